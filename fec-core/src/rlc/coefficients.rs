//! Coding coefficients, RFC 8681 section 3.6.

use super::tinymt::TinyMt32;
use super::{Field, MAX_DENSITY_THRESHOLD, MAX_WINDOW};
use crate::Error;

/// The coding coefficients of one repair symbol: `count` values (one per
/// source symbol of its window, in ESI order) drawn from TinyMT32 seeded with
/// `repair_key`, exactly as RFC 8681 section 3.6 specifies.
///
/// - [`Field::Gf2`] yields 0 or 1. With `dt == 15` every coefficient is 1 and
///   the generator is not used; otherwise each is 1 when `rand16 <= dt`.
/// - [`Field::Gf256`] with `dt == 15` yields non-zero bytes (`rand256`
///   redrawn while zero); with `dt < 15` a coefficient is non-zero only when
///   `rand16 <= dt`, so about `(dt + 1) / 16` of them are.
///
/// # Errors
/// [`Error::RlcDensityThreshold`] if `dt > 15`; [`Error::RlcWindowSize`] if
/// `count` is 0 or above 4095 (the 12-bit NSS field).
///
/// ```
/// use fec_core::rlc::{coding_coefficients, Field};
///
/// let dense = coding_coefficients(Field::Gf256, 1, 15, 4)?;
/// assert_eq!(dense, [37, 225, 177, 176]);
/// assert_eq!(coding_coefficients(Field::Gf2, 9, 15, 3)?, [1, 1, 1]);
/// assert!(coding_coefficients(Field::Gf256, 1, 16, 4).is_err());
/// # Ok::<(), fec_core::Error>(())
/// ```
pub fn coding_coefficients(
    field: Field,
    repair_key: u16,
    dt: u8,
    count: usize,
) -> Result<Vec<u8>, Error> {
    check_density_threshold(dt)?;
    check_window_size(count, MAX_WINDOW)?;
    let mut coefficients = vec![0; count];
    fill_coding_coefficients(field, repair_key, dt, &mut coefficients);
    Ok(coefficients)
}

/// `Err` unless `dt <= 15`.
pub(crate) fn check_density_threshold(dt: u8) -> Result<(), Error> {
    if dt > MAX_DENSITY_THRESHOLD {
        return Err(Error::RlcDensityThreshold { dt });
    }
    Ok(())
}

/// `Err` unless `1 <= nss <= max`.
pub(crate) fn check_window_size(nss: usize, max: usize) -> Result<(), Error> {
    if nss == 0 || nss > max {
        return Err(Error::RlcWindowSize { nss, max });
    }
    Ok(())
}

/// Writes the coefficients for `out.len()` source symbols. `dt` must already
/// be checked.
pub(crate) fn fill_coding_coefficients(field: Field, repair_key: u16, dt: u8, out: &mut [u8]) {
    debug_assert!(dt <= MAX_DENSITY_THRESHOLD);
    let dense = dt == MAX_DENSITY_THRESHOLD;
    match field {
        Field::Gf2 if dense => out.fill(1),
        Field::Gf2 => {
            let mut generator = TinyMt32::new(u32::from(repair_key));
            for coefficient in out.iter_mut() {
                *coefficient = u8::from(generator.next_rand16() <= dt);
            }
        }
        Field::Gf256 => {
            let mut generator = TinyMt32::new(u32::from(repair_key));
            for coefficient in out.iter_mut() {
                *coefficient = if dense || generator.next_rand16() <= dt {
                    non_zero_rand256(&mut generator)
                } else {
                    0
                };
            }
        }
    }
}

fn non_zero_rand256(generator: &mut TinyMt32) -> u8 {
    loop {
        let value = generator.next_rand256();
        if value != 0 {
            return value;
        }
    }
}

/// A small bounded memo of coefficient vectors keyed by what determines them,
/// so repeated (or duplicated) repair symbols skip the generator.
#[derive(Debug, Default)]
pub(crate) struct CoefficientCache {
    entries: std::collections::HashMap<(u16, u8, u16), std::sync::Arc<[u8]>>,
}

/// Beyond this many vectors the cache starts over; keys usually increment,
/// so old entries are rarely wanted again.
const CACHE_CAPACITY: usize = 256;

/// The room the cache takes on first use; it grows (doubling) from there.
const CACHE_FIRST_CAPACITY: usize = 8;

impl CoefficientCache {
    /// The coefficients for (`repair_key`, `dt`, `nss`), `dt` and `nss`
    /// already checked.
    pub(crate) fn coefficients(
        &mut self,
        field: Field,
        repair_key: u16,
        dt: u8,
        nss: u16,
    ) -> std::sync::Arc<[u8]> {
        if let Some(found) = self.entries.get(&(repair_key, dt, nss)) {
            return found.clone();
        }
        if self.entries.len() >= CACHE_CAPACITY {
            self.entries.clear();
        }
        if self.entries.capacity() == 0 {
            // Room for a few vectors at once, not by doubling from one.
            self.entries.reserve(CACHE_FIRST_CAPACITY);
        }
        let mut fresh = vec![0; usize::from(nss)];
        fill_coding_coefficients(field, repair_key, dt, &mut fresh);
        let fresh: std::sync::Arc<[u8]> = fresh.into();
        self.entries.insert((repair_key, dt, nss), fresh.clone());
        fresh
    }
}
