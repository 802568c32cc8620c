# meshplane control plane image.
FROM rust:1.91-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin meshplane

FROM debian:bookworm-slim
COPY --from=build /src/target/release/meshplane /usr/local/bin/meshplane
COPY examples /examples
EXPOSE 18000 18001
ENTRYPOINT ["meshplane"]
CMD ["serve", "--config", "/mesh", "--xds-listen", "0.0.0.0:18000", "--admin-listen", "0.0.0.0:18001"]
