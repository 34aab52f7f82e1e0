//! Portable table-driven kernels: the reference every SIMD backend is tested
//! against.

use super::field::MUL_TABLE;

pub(super) fn mul_slice(c: u8, src: &[u8], dst: &mut [u8]) {
    let row = &MUL_TABLE[c as usize];
    for (d, s) in dst.iter_mut().zip(src) {
        *d = row[*s as usize];
    }
}

pub(super) fn mul_add_slice(c: u8, src: &[u8], dst: &mut [u8]) {
    let row = &MUL_TABLE[c as usize];
    for (d, s) in dst.iter_mut().zip(src) {
        *d ^= row[*s as usize];
    }
}

pub(super) fn xor_slice(src: &[u8], dst: &mut [u8]) {
    for (d, s) in dst.iter_mut().zip(src) {
        *d ^= *s;
    }
}

pub(super) fn sum_slices<const ADD: bool>(sources: &[&[u8]], dst: &mut [u8]) {
    if !ADD {
        dst.fill(0);
    }
    for source in sources {
        xor_slice(source, dst);
    }
}

pub(super) fn mul_xor_spread(
    c: u8,
    acc: &[u8],
    add: Option<&[u8]>,
    next: &mut [u8],
    spread: &mut [&mut [u8]],
) {
    let len = next.len();
    mul_slice(c, &acc[..len], next);
    if let Some(add) = add {
        xor_slice(&add[..len], next);
    }
    for target in spread.iter_mut() {
        xor_slice(next, &mut target[..len]);
    }
}

pub(super) fn matrix_apply<S: AsRef<[u8]>, D: AsMut<[u8]>>(
    coefficients: &[u8],
    cols: usize,
    inputs: &[S],
    outputs: &mut [D],
    add: bool,
) {
    for (r, output) in outputs.iter_mut().enumerate() {
        let output = output.as_mut();
        let row = &coefficients[r * cols..(r + 1) * cols];
        if !add {
            output.fill(0);
        }
        for (&c, input) in row.iter().zip(inputs) {
            mul_add_slice(c, input.as_ref(), output);
        }
    }
}
