pub fn storage() {}
