pub fn y(){}
pub mod bootstrap;
pub mod builder;
