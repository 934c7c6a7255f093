"""The one base class for every domain failure a service can raise."""


class DomainError(Exception):
    """A business rule said no. `message` is safe to show to the person who asked."""

    code = "domain_error"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        return self.message
