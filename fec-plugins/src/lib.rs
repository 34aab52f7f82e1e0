//! FEC plugins (work in progress).
