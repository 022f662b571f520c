"""Seeded, deterministic fake records: the same seed gives the same records on every machine."""

from __future__ import annotations

import random
from dataclasses import dataclass

__all__ = ["SIM_EPOCH", "Person", "RecordGenerator"]

_FIRST_NAMES = (
    "Ada", "Alan", "Grace", "Linus", "Margaret", "Ken", "Barbara", "Dennis", "Frances", "Edsger",
    "Radia", "Tim", "Katherine", "Guido", "Hedy", "John", "Sophie", "Niklaus", "Anita", "Donald",
    "Joan", "Bjarne", "Lynn", "James", "Karen", "Leslie", "Mary", "Vint", "Shafi", "Whitfield",
)  # fmt: skip
_LAST_NAMES = (
    "Lovelace", "Turing", "Hopper", "Torvalds", "Hamilton", "Thompson", "Liskov", "Ritchie",
    "Allen", "Dijkstra", "Perlman", "Berners-Lee", "Johnson", "van Rossum", "Lamarr", "McCarthy",
    "Wilson", "Wirth", "Borg", "Knuth", "Clarke", "Stroustrup", "Conway", "Gosling", "Jones",
    "Lamport", "Kenneth", "Cerf", "Goldwasser", "Diffie",
)  # fmt: skip
_COMPANY_WORDS = (
    "Acme", "Globex", "Initech", "Umbrella", "Stark", "Wayne", "Hooli", "Vandelay", "Soylent",
    "Tyrell", "Cyberdyne", "Aperture", "Monarch", "Oscorp", "Wonka", "Gringotts", "Dunder",
    "Pied Piper", "Massive", "Nakatomi",
)  # fmt: skip
_COMPANY_SUFFIXES = ("Inc", "LLC", "Ltd", "GmbH", "Group", "Labs", "Systems", "Holdings")
_INDUSTRIES = (
    "Technology", "Manufacturing", "Retail", "Finance", "Healthcare", "Education", "Energy",
    "Media", "Transportation", "Hospitality",
)  # fmt: skip
_PLACES = (
    ("Berlin", "DE"), ("Paris", "FR"), ("London", "GB"), ("New York", "US"), ("Austin", "US"),
    ("Toronto", "CA"), ("Sydney", "AU"), ("Tokyo", "JP"), ("Madrid", "ES"), ("Lisbon", "PT"),
    ("Amsterdam", "NL"), ("Dublin", "IE"),
)  # fmt: skip
_PRODUCT_WORDS = (
    "Widget", "Gadget", "Sprocket", "Flux Capacitor", "Gizmo", "Doohickey", "Thingamajig",
    "Module", "Adapter", "Sensor", "License", "Subscription", "Support Plan", "Starter Kit",
)  # fmt: skip
_WORDS = (
    "sync", "fails", "when", "token", "expires", "during", "pagination", "webhook", "retry",
    "invoice", "customer", "export", "timeout", "slow", "crash", "missing", "field", "update",
    "records", "duplicate", "after", "upgrade", "error", "rate", "limit", "dashboard",
)  # fmt: skip
_ALPHANUM = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

SIM_EPOCH = 1_704_067_200
"""2024-01-01T00:00:00Z: generated records are created in the year after this instant."""


@dataclass(frozen=True, slots=True)
class Person:
    """A generated person."""

    first_name: str
    last_name: str
    email: str


class RecordGenerator:
    """Seeded fake data; each ``stream`` gets its own sequence, so streams are independent.

    Example:
        >>> gen = RecordGenerator(seed=7, stream="customers")
        >>> gen.ident("cus_", 14) == RecordGenerator(seed=7, stream="customers").ident("cus_", 14)
        True
    """

    def __init__(self, seed: int, stream: str) -> None:
        self.rng = random.Random(f"{seed}:{stream}")

    def ident(self, prefix: str, length: int, alphabet: str = _ALPHANUM) -> str:
        """A random id such as ``cus_NffrFeUfNV2Hib``."""
        return prefix + "".join(self.rng.choices(alphabet, k=length))

    def person(self, domain: str | None = None) -> Person:
        """A person with a matching e-mail address."""
        first = self.rng.choice(_FIRST_NAMES)
        last = self.rng.choice(_LAST_NAMES)
        local = f"{first}.{last}".lower().replace(" ", "").replace("-", "")
        number = self.rng.randrange(1, 10_000)
        return Person(first, last, f"{local}{number}@{domain or 'example.com'}")

    def company(self) -> str:
        """A company name."""
        return f"{self.rng.choice(_COMPANY_WORDS)} {self.rng.choice(_COMPANY_SUFFIXES)}"

    @staticmethod
    def domain_of(company: str, unique: int) -> str:
        """A web domain for a company (``unique`` keeps domains distinct)."""
        stem = company.split()[0].lower()
        return f"{stem}{unique}.example.com"

    def industry(self) -> str:
        """An industry."""
        return self.rng.choice(_INDUSTRIES)

    def place(self) -> tuple[str, str]:
        """A (city, ISO country code) pair."""
        return self.rng.choice(_PLACES)

    def phone(self) -> str:
        """A phone number in the reserved 555 range."""
        return f"+1-555-{self.rng.randrange(100, 1000)}-{self.rng.randrange(1000, 10000)}"

    def product(self) -> str:
        """A product name."""
        model = f"{self.rng.choice('ABCDEFGHJK')}{self.rng.randrange(1, 100)}"
        return f"{self.rng.choice(_PRODUCT_WORDS)} {model}"

    def sentence(self, words: int) -> str:
        """A lower-case sentence of ``words`` words, capitalised."""
        text = " ".join(self.rng.choices(_WORDS, k=words))
        return text[:1].upper() + text[1:]

    def amount(self, low: int, high: int) -> int:
        """An amount in minor units, rounded to 100."""
        return self.rng.randrange(low // 100, high // 100 + 1) * 100

    def timestamps(self, count: int, start: int = SIM_EPOCH, span: int = 365 * 86_400) -> list[int]:
        """``count`` strictly increasing Unix timestamps within ``span`` seconds of ``start``."""
        step = max(span // max(count, 1), 2)
        return [start + i * step + self.rng.randrange(0, step // 2) for i in range(count)]
