from materialize.checks.checks import Check


class Second(Check):
    pass
