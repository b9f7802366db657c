from materialize.checks.checks import Check


class First(Check):
    pass
