//! The DNS wire layer (work in progress).
