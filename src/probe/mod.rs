//! probe (see DESIGN.md §3).
