//! FEC plugin SDK (work in progress).
