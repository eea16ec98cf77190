"""Run under torchrun by test_training.py: train a few steps with DDP, then each rank writes a
fingerprint of its weights so the test can check that all ranks hold the same model."""
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from train.run import build_trainer, compose_config  # noqa: E402


def main() -> None:
    out = Path(sys.argv[1])
    trainer = build_trainer(compose_config(sys.argv[2:]))
    trainer.fit()
    flat = torch.cat([p.detach().flatten() for p in trainer.model.parameters()] +
                     [p.detach().flatten() for p in trainer.criterion.parameters()])
    (out / f"rank{trainer.rank}.pt").write_bytes(b"")
    torch.save(flat, out / f"rank{trainer.rank}.pt")
    print(f"rank {trainer.rank} world {trainer.world} steps {trainer.global_step}")


if __name__ == "__main__":
    main()
