"""Limits as an operator writes them, as Dokploy takes them, and as the plan says them."""

import pytest

from deployer.core.limits import memory_bytes, nano_cpus, said


@pytest.mark.parametrize(
    ("text", "expected"),
    [("4Gi", 4 * 1024**3), ("512m", 512 * 1024**2), ("512Mi", 512 * 1024**2),
     ("2g", 2 * 1024**3), ("536870912", 536870912), ("1.5Gi", 1536 * 1024**2),
     ("none", None), ("", None), ("0", None)],
)  # fmt: skip
def test_memory_reads_as_docker_does_and_leaves_as_whole_bytes(
    text: str, expected: int | None
) -> None:
    assert memory_bytes(text) == expected


@pytest.mark.parametrize("text", ["lots", "4 GB", "-1", "1Zi", "5m", "1024"])
def test_memory_that_cannot_be_a_limit_says_what_would_do(text: str) -> None:
    with pytest.raises(ValueError, match=r"4Gi|at least 6Mi"):
        memory_bytes(text)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("2", 2_000_000_000), ("0.5", 500_000_000), ("1.25", 1_250_000_000), ("none", None)],
)
def test_cpus_leave_as_nanocpus(text: str, expected: int | None) -> None:
    assert nano_cpus(text) == expected


@pytest.mark.parametrize("text", ["two", "-1", "nan", "inf", "0.0000000001"])
def test_cpus_that_cannot_be_a_limit_say_what_would_do(text: str) -> None:
    with pytest.raises(ValueError, match="CPUs"):
        nano_cpus(text)


def test_the_plan_says_them_in_words() -> None:
    assert said(4 * 1024**3, 2_000_000_000) == "4 GiB memory, 2 CPUs"
    assert said(512 * 1024**2, 500_000_000) == "512 MiB memory, 0.5 CPUs"
    assert said(None, 1_000_000_000) == "1 CPU"
    assert said(None, None) is None
