//! PLACEHOLDER: mix (uncommitted skeleton, replaced by its owner)
