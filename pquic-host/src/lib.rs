//! pquic-host library (work in progress).
