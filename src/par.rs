//! Splitting independent work over the machine's cores (parsing files, rebuilding nodes).

/// Maps `items` in order on the process-wide worker pool (one thread per core). Each worker takes
/// contiguous chunks (at least `min_chunk` items, so small jobs stay on one thread) and its own state
/// from `init`, for per-chunk caches. The pool's threads live as long as the process, so their
/// allocator heaps stay warm between reloads instead of being torn down and faulted in afresh.
/// A panic in a worker is re-raised here, never swallowed.
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
    use rayon::prelude::*;
    let cores = rayon::current_num_threads();
    let threads = cores.min(items.len().div_ceil(min_chunk.max(1))).max(1);
    let chunk = items.len().div_ceil(threads).max(1);
    if threads == 1 {
        let mut state = init();
        return items
            .iter()
            .filter_map(|item| f(&mut state, item))
            .collect();
    }
    let parts: Vec<Vec<R>> = items
        .par_chunks(chunk)
        .map(|part| {
            let mut state = init();
            part.iter().filter_map(|item| f(&mut state, item)).collect()
        })
        .collect();
    parts.into_iter().flatten().collect()
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
