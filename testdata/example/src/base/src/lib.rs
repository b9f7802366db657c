pub fn base() {}
