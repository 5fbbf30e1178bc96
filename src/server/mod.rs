//! server (see DESIGN.md §3).
