//! The repository side: what git says, which files are visible and what
//! they hold, and the session that loads them into the model.

pub mod changes;
pub mod git;
pub mod gitload;
pub mod history;
pub mod indexload;
pub mod load;
pub mod roots;
pub mod session;
