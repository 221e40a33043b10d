"""POT's loss: the BCE term against its closed form and PyTorch's, the weighted objective."""

import math

import pytest
import torch
import torch.nn.functional as F

from contrastkit.functional.pot import pot_loss, pot_regularized_loss


def test_pot_loss_matches_bce_with_logits():
    bound = torch.tensor([-2.0, -0.5, 0.0, 1.5, 3.0], dtype=torch.float64, requires_grad=True)
    expected = sum(-math.log(1 / (1 + math.exp(-float(b)))) for b in bound) / 5
    torch.testing.assert_close(pot_loss(bound), torch.tensor(expected, dtype=torch.float64))
    torch.testing.assert_close(
        pot_loss(bound), F.binary_cross_entropy_with_logits(bound, torch.ones_like(bound))
    )
    subset = torch.tensor([0, 3])
    expected_subset = (F.softplus(torch.tensor(2.0)) + F.softplus(torch.tensor(-1.5))) / 2
    torch.testing.assert_close(pot_loss(bound, nodes=subset).float(), expected_subset)
    mask = torch.tensor([True, False, False, True, False])
    torch.testing.assert_close(pot_loss(bound, nodes=mask), pot_loss(bound, nodes=subset))


def test_pot_regularized_loss_formula():
    total = pot_regularized_loss(torch.tensor(2.0), torch.tensor(0.4), torch.tensor(0.8), kappa=0.3)
    torch.testing.assert_close(total, torch.tensor(0.7 * 2.0 + 0.3 * 0.6))


def test_loss_errors_name_what_was_expected():
    with pytest.raises(ValueError, match=r"kappa: expected a float in \[0, 1\]"):
        pot_regularized_loss(torch.tensor(1.0), torch.tensor(1.0), torch.tensor(1.0), kappa=2.0)
    with pytest.raises(ValueError, match="expected finite values"):
        pot_loss(torch.tensor([0.0, float("nan")]))
    with pytest.raises(ValueError, match="expected at least one node"):
        pot_loss(torch.tensor([0.0, 1.0]), nodes=torch.tensor([], dtype=torch.long))
