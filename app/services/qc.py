"""The defaults a quality check is opened with (from Settings), passed to the services that open them."""

from __future__ import annotations

from dataclasses import dataclass

from app.qc.stats import sample_size_for


@dataclass(frozen=True)
class QcDefaults:
    lease_s: int = 600
    solve_test_size: int = 20
    solve_test_pass: int = 18
    max_error_rate: float = 0.1
    expected_error_rate: float = 0.02
    confidence: float = 0.95

    @classmethod
    def from_settings(cls, settings) -> QcDefaults:
        return cls(lease_s=settings.review_lease_s, solve_test_size=settings.solve_test_size,
                   solve_test_pass=settings.solve_test_pass, max_error_rate=settings.spot_check_max_error_rate,
                   expected_error_rate=settings.spot_check_expected_error_rate)

    @property
    def spot_check_size(self) -> int:
        """Big enough that a task with the expected error rate can pass at this confidence."""
        return sample_size_for(self.max_error_rate, expected_error_rate=self.expected_error_rate,
                               confidence=self.confidence)
