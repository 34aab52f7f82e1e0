//! The seeded loss models: reproducible, and with the statistics they claim.

use fec_core::pipeline::loss::{burst_lengths, Bernoulli, GilbertElliott, LossModel};

fn rate(trace: &[bool]) -> f64 {
    trace.iter().filter(|&&l| l).count() as f64 / trace.len() as f64
}

#[test]
fn bernoulli_rate_and_independence() {
    for (seed, p) in [(1, 0.01), (2, 0.05), (3, 0.2), (4, 0.5)] {
        let trace = Bernoulli::new(p, seed).trace(200_000);
        assert!(
            (rate(&trace) - p).abs() < 0.1 * p + 0.001,
            "p={p}: {}",
            rate(&trace)
        );
        // Independent losses: mean burst about 1 / (1 - p).
        let b = burst_lengths(&trace);
        let mean = b.iter().sum::<usize>() as f64 / b.len() as f64;
        assert!(
            (mean - 1.0 / (1.0 - p)).abs() < 0.1 / (1.0 - p),
            "p={p}: mean burst {mean}"
        );
    }
    assert!(!Bernoulli::new(0.0, 1).trace(10_000).contains(&true));
    assert!(!Bernoulli::new(1.0, 1).trace(10_000).contains(&false));
    assert!(!Bernoulli::new(f64::NAN, 1).trace(100).contains(&true));
}

#[test]
fn gilbert_elliott_rate_and_burst_length() {
    for (seed, p, burst) in [(1, 0.03, 2.0), (2, 0.05, 4.0), (3, 0.1, 8.0), (4, 0.2, 1.0)] {
        let trace = GilbertElliott::with_mean_burst(p, burst, seed).trace(400_000);
        assert!(
            (rate(&trace) - p).abs() < 0.15 * p,
            "p={p} burst={burst}: rate {}",
            rate(&trace)
        );
        let b = burst_lengths(&trace);
        let mean = b.iter().sum::<usize>() as f64 / b.len() as f64;
        // Every bad spell is one burst: the state cannot leave and re-enter
        // the bad state within one packet.
        assert!(
            (mean - burst).abs() < 0.15 * burst,
            "p={p} burst={burst}: mean burst {mean}"
        );
    }
}

#[test]
fn general_gilbert_elliott_loses_in_both_states() {
    let mut model = GilbertElliott::new(0.01, 0.1, 0.001, 0.5, 9);
    let trace = model.trace(300_000);
    // Stationary bad share 0.01 / 0.11; loss = 0.5 * 0.0909 + 0.001 * 0.909.
    let expected = 0.5 * (0.01 / 0.11) + 0.001 * (0.1 / 0.11);
    assert!(
        (rate(&trace) - expected).abs() < 0.1 * expected,
        "{}",
        rate(&trace)
    );
}

#[test]
fn seeds_reproduce_and_differ() {
    assert_eq!(
        Bernoulli::new(0.1, 7).trace(1000),
        Bernoulli::new(0.1, 7).trace(1000)
    );
    assert_ne!(
        Bernoulli::new(0.1, 7).trace(1000),
        Bernoulli::new(0.1, 8).trace(1000)
    );
    let a = GilbertElliott::with_mean_burst(0.1, 3.0, 7).trace(1000);
    assert_eq!(a, GilbertElliott::with_mean_burst(0.1, 3.0, 7).trace(1000));
    assert_ne!(a, GilbertElliott::with_mean_burst(0.1, 3.0, 8).trace(1000));
    // Usable as a trait object, as harnesses do.
    let mut models: Vec<Box<dyn LossModel>> = vec![
        Box::new(Bernoulli::new(0.5, 1)),
        Box::new(GilbertElliott::with_mean_burst(0.5, 2.0, 1)),
    ];
    for model in &mut models {
        assert_eq!(model.trace(10).len(), 10);
    }
}
