Hint = str
