pub fn x(){}
pub mod pathspec;
