//! vpp (see DESIGN.md §3).
