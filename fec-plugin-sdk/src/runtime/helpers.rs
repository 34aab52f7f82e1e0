//! The eleven FEC helpers a pluglet can call (`crate::abi::HelperId`).
//!
//! Each takes the calling execution's [`Call`], the instance region (read
//! only) and the five argument registers, all of them plugin-chosen `u64`s.
//! A helper checks every argument against the call (flow, operation, ranges,
//! offsets into the region) and either records a decision in
//! [`Call::choices`] and returns `r0`, or refuses with the reason, which
//! faults the execution. None dereferences a plugin value; none can panic
//! or overflow on any input.

#![forbid(unsafe_code)]

use super::call::Call;
use super::{CodeChoice, MAX_LOGS_PER_CALL};
use crate::abi::{
    HelperId, Operation, PathStatKey, Scheme, StatKey, MAX_LOG_LEN, MAX_PATHS, MAX_REPAIR_PER_CALL,
    MAX_WINDOW,
};

/// A helper body: `(call, region, r1..r5) -> r0`, or why it refuses.
pub(crate) type HelperFn = fn(&mut Call<'_>, &[u8], [u64; 5]) -> Result<u64, String>;

/// A helper as the interpreter calls it.
#[derive(Clone, Copy)]
pub(crate) struct Helper {
    /// Its C name, for faults.
    pub(crate) name: &'static str,
    /// Whether it takes a decision (and so traps in a `post` observer).
    pub(crate) decision: bool,
    pub(crate) run: HelperFn,
}

/// The implementation of helper `id`, if this runtime has one.
pub(crate) fn bind(id: u32) -> Option<Helper> {
    let id = HelperId::from_id(id)?;
    let run: HelperFn = match id {
        HelperId::Protect => protect,
        HelperId::EmitRepair => emit_repair,
        HelperId::WindowSet => window_set,
        HelperId::Stat => stat,
        HelperId::NowUs => now_us,
        HelperId::Log => log,
        HelperId::SetCode => set_code,
        HelperId::RepairAfter => repair_after,
        HelperId::RepairRepeat => repair_repeat,
        HelperId::PathStat => path_stat,
        HelperId::RepairPath => repair_path,
    };
    Some(Helper {
        name: id.name(),
        decision: id.is_decision(),
        run,
    })
}

fn protect(s: &mut Call<'_>, _: &[u8], [flow, ..]: [u64; 5]) -> Result<u64, String> {
    let Some(expected) = s.flow else {
        return Err(format!(
            "only valid in on_source, called in {}",
            s.operation.name()
        ));
    };
    if flow != u64::from(expected) {
        return Err(format!(
            "flow {flow} is not this packet's flow ({expected})"
        ));
    }
    s.choices.protect = Some(expected);
    Ok(0)
}

fn emit_repair(s: &mut Call<'_>, _: &[u8], [count, ..]: [u64; 5]) -> Result<u64, String> {
    if !matches!(s.operation, Operation::OnSource | Operation::ScheduleRepair) {
        return Err(format!(
            "only valid in on_source and schedule_repair, called in {}",
            s.operation.name()
        ));
    }
    // `count` is any u64 the plugin chose: a plain `+` would overflow.
    let total = u64::from(s.choices.repair).saturating_add(count);
    if count == 0 || total > u64::from(MAX_REPAIR_PER_CALL) {
        return Err(format!(
            "count {count} out of range (1..={MAX_REPAIR_PER_CALL} per call, {} already)",
            s.choices.repair
        ));
    }
    // <= MAX_REPAIR_PER_CALL, checked above.
    s.choices.repair = total as u32;
    Ok(count)
}

fn window_set(s: &mut Call<'_>, _: &[u8], [n, ..]: [u64; 5]) -> Result<u64, String> {
    if n == 0 || n > u64::from(MAX_WINDOW) {
        return Err(format!("window {n} out of range (1..={MAX_WINDOW})"));
    }
    s.choices.window = Some(n as u32);
    Ok(0)
}

fn stat(s: &mut Call<'_>, _: &[u8], [key, ..]: [u64; 5]) -> Result<u64, String> {
    let key = StatKey::from_id(key).ok_or_else(|| format!("unknown stat key {key}"))?;
    Ok(s.view.stats.value(key))
}

fn now_us(s: &mut Call<'_>, _: &[u8], _: [u64; 5]) -> Result<u64, String> {
    Ok(s.view.now_us)
}

fn log(s: &mut Call<'_>, region: &[u8], [offset, len, ..]: [u64; 5]) -> Result<u64, String> {
    if len == 0 || len > u64::from(MAX_LOG_LEN) {
        return Err(format!("length {len} out of range (1..={MAX_LOG_LEN})"));
    }
    let bytes = usize::try_from(offset)
        .ok()
        .and_then(|start| region.get(start..start.checked_add(len as usize)?));
    let Some(bytes) = bytes else {
        return Err(format!(
            "bytes {offset}..+{len} are outside the instance region ({} bytes); pass an offset into the region, not a pointer",
            region.len()
        ));
    };
    // Copied now, so a plugin may reuse its buffer right after the call.
    if s.logs.len() < MAX_LOGS_PER_CALL {
        s.logs.push(String::from_utf8_lossy(bytes).into_owned());
    }
    Ok(0)
}

fn set_code(
    s: &mut Call<'_>,
    _: &[u8],
    [scheme, source, repair, ..]: [u64; 5],
) -> Result<u64, String> {
    let scheme = Scheme::from_id(scheme).ok_or_else(|| format!("unknown scheme {scheme}"))?;
    let offered = s.view.schemes_offered;
    // `checked_shl`: an id past 31 is simply not in the mask.
    let bit = 1u32.checked_shl(scheme as u32).unwrap_or(0);
    if offered != 0 && offered & bit == 0 {
        return Err(format!("scheme {scheme:?} is not offered by this host"));
    }
    if scheme != Scheme::None {
        if source == 0 || source > u64::from(MAX_WINDOW) {
            return Err(format!(
                "source_symbols {source} out of range (1..={MAX_WINDOW})"
            ));
        }
        if repair > u64::from(MAX_REPAIR_PER_CALL) {
            return Err(format!(
                "repair_symbols {repair} out of range (0..={MAX_REPAIR_PER_CALL})"
            ));
        }
        // Both bounded just above: the sum cannot overflow.
        if scheme == Scheme::ReedSolomon && source + repair > 256 {
            return Err(format!(
                "Reed-Solomon needs source + repair <= 256, got {}",
                source + repair
            ));
        }
    }
    // With `Scheme::None` the counts are unchecked and only their low bits
    // are kept: the host ignores them for that scheme.
    s.choices.code = Some(CodeChoice {
        scheme,
        source_symbols: source as u32,
        repair_symbols: repair as u32,
    });
    Ok(0)
}

fn repair_after(s: &mut Call<'_>, _: &[u8], [n, ..]: [u64; 5]) -> Result<u64, String> {
    if !matches!(
        s.operation,
        Operation::Configure | Operation::OnFeedback | Operation::ScheduleRepair
    ) {
        return Err(format!(
            "only valid in configure, on_feedback and schedule_repair, called in {}",
            s.operation.name()
        ));
    }
    if n == 0 || n > u64::from(MAX_WINDOW) {
        return Err(format!("{n} sources out of range (1..={MAX_WINDOW})"));
    }
    s.choices.repair_after = Some(n as u32);
    Ok(0)
}

fn repair_repeat(s: &mut Call<'_>, _: &[u8], [k, ..]: [u64; 5]) -> Result<u64, String> {
    if s.operation != Operation::ScheduleRepair {
        return Err(format!(
            "only valid in schedule_repair, called in {}",
            s.operation.name()
        ));
    }
    if k == 0 || k > u64::from(MAX_WINDOW) {
        return Err(format!("{k} calls out of range (1..={MAX_WINDOW})"));
    }
    s.choices.repair_repeat = Some(k as u32);
    Ok(0)
}

fn path_out_of_range(path: u64) -> String {
    format!("path {path} out of range (0..{MAX_PATHS})")
}

fn path_stat(s: &mut Call<'_>, _: &[u8], [path, key, ..]: [u64; 5]) -> Result<u64, String> {
    // `path` is any u64: no cast before the bounds check.
    let stats = usize::try_from(path)
        .ok()
        .and_then(|i| s.view.paths.get(i))
        .ok_or_else(|| path_out_of_range(path))?;
    let key = PathStatKey::from_id(key).ok_or_else(|| format!("unknown path stat key {key}"))?;
    Ok(stats.value(key))
}

fn repair_path(s: &mut Call<'_>, _: &[u8], [path, ..]: [u64; 5]) -> Result<u64, String> {
    if path >= u64::from(MAX_PATHS) && path != u64::from(crate::abi::PATH_OTHER) {
        return Err(path_out_of_range(path));
    }
    // < MAX_PATHS (4) or PATH_OTHER (255), checked above.
    s.choices.repair_path = Some(path as u8);
    Ok(0)
}
