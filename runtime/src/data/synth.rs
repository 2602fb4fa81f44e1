//! PLACEHOLDER: synth (uncommitted skeleton, replaced by its owner)
