//! What a person looks at: figures (plotters, SVG and PNG) and the HTML report. Reads stored
//! results; computes no science.

pub mod figures;
pub mod html;
