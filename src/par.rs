//! Splitting independent work over the machine's cores (parsing files, rebuilding nodes).

/// Maps `items` in order, on up to one scoped thread per core. Each thread takes a contiguous chunk
/// (at least `min_chunk` items, so small jobs stay on one thread) and its own state from `init`, for
/// per-thread caches. A panic in a worker is re-raised here, never swallowed.
pub fn map_chunks<T, S, R>(
    items: &[T],
    min_chunk: usize,
    init: impl Fn() -> S + Sync,
    f: impl Fn(&mut S, &T) -> Option<R> + Sync,
) -> Vec<R>
where
    T: Sync,
    R: Send,
{
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = cores.min(items.len().div_ceil(min_chunk.max(1))).max(1);
    let chunk = items.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .chunks(chunk)
            .map(|part| {
                let (init, f) = (&init, &f);
                scope.spawn(move || {
                    let mut state = init();
                    part.iter()
                        .filter_map(|item| f(&mut state, item))
                        .collect::<Vec<R>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn keeps_order_and_filters() {
        let items: Vec<u32> = (0..1000).collect();
        let out = super::map_chunks(
            &items,
            10,
            || 0u32,
            |seen, x| {
                *seen += 1;
                (x % 3 == 0).then_some(*x)
            },
        );
        assert_eq!(out, (0..1000).filter(|x| x % 3 == 0).collect::<Vec<_>>());
    }
}
