//! events (see DESIGN.md §3).
