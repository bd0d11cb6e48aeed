import pytest
import torch

torch.set_num_threads(1)  # tiny matmuls: a second thread only adds sync cost

YARN = {"type": "yarn", "factor": 4.0, "original_max_position_embeddings": 16, "beta_fast": 32,
        "beta_slow": 1, "mscale": 0.707, "mscale_all_dim": 1.0}

# small variants of the tiny preset that cover every attention / routing switch
VARIANTS = {
    "q_lora": {},
    "no_q_lora": {"q_lora_rank": None},
    "yarn": {"rope_scaling": YARN},
    "groups": {"n_routed_experts": 8, "n_group": 4, "topk_group": 2, "num_experts_per_tok": 3},
}


@pytest.fixture(params=sorted(VARIANTS))
def variant(request):
    return VARIANTS[request.param]


def randomize_bias(model, std=0.05):
    """Nonzero balancing biases, so tests see that they only select."""
    with torch.no_grad():
        for moe in model.moe_layers():
            moe.gate.e_score_correction_bias.normal_(0, std)
