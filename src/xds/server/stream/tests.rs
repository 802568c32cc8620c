//! The stream's end of life.

use super::*;

#[test]
fn a_stream_lives_its_age_plus_at_most_a_tenth() {
    let age = Duration::from_secs(600);
    let lives: Vec<Duration> = (0..200).map(|id| jittered(age, id)).collect();
    assert!(lives.iter().all(|d| *d >= age && *d <= age + age / 10));
    let spread = lives
        .iter()
        .max()
        .unwrap()
        .saturating_sub(*lives.iter().min().unwrap());
    assert!(spread > age / 20, "jitter spreads reconnects: {spread:?}");
}
