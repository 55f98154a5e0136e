"""`make demo` is part of what we promise: its tour must keep working."""

import pytest

from bot import demo


async def test_the_demo_tour_happens_as_printed(capsys: pytest.CaptureFixture[str]) -> None:
    await demo.run()  # raises DemoFailed naming the step that did not happen
    shown = capsys.readouterr().out
    assert "alice is live at https://alice.ai.example.test" in shown
    assert "Undo Dokploy project: removed project ai-stack-carol" in shown
    assert "alice was removed" in shown
