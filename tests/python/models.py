"""The reference models of kiln's test suite and benchmarks, with random weights (nothing is
downloaded). Transformers use small configs in tests; benchmarks may ask for the full-size ones."""
from __future__ import annotations

import torch


def randomize_zero_parameters(model: torch.nn.Module) -> torch.nn.Module:
    """Some models start with all-zero layers (vit_b_16's head): their outputs would be all zeros,
    and a comparison with eager would prove nothing. Give such parameters random values."""
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() > 1 and not p.any():
                p.normal_(0.0, 0.02)
    return model


def resnet50():
    import torchvision
    return randomize_zero_parameters(torchvision.models.resnet50()), (torch.randn(1, 3, 224, 224),)


def mobilenet_v3_small():
    import torchvision
    return randomize_zero_parameters(torchvision.models.mobilenet_v3_small()), (torch.randn(1, 3, 224, 224),)


def vit_b_16():
    import torchvision
    return randomize_zero_parameters(torchvision.models.vit_b_16()), (torch.randn(1, 3, 224, 224),)


def bert(small: bool = True, batch: int = 2, seq: int = 16):
    import transformers
    config = transformers.BertConfig(
        hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128,
        attn_implementation="eager") if small else transformers.BertConfig(attn_implementation="eager")
    ids = torch.randint(0, config.vocab_size, (batch, seq))
    mask = torch.ones(batch, seq, dtype=torch.long)
    mask[-1, seq // 2:] = 0  # padding in the last sequence exercises the attention mask
    return transformers.BertModel(config), (ids, mask)


def gpt2(small: bool = True, batch: int = 2, seq: int = 16):
    import transformers
    config = transformers.GPT2Config(n_embd=64, n_layer=2, n_head=4, use_cache=False,
                                     attn_implementation="eager") if small else \
        transformers.GPT2Config(use_cache=False, attn_implementation="eager")
    return transformers.GPT2Model(config), (torch.randint(0, config.vocab_size, (batch, seq)),)


MODELS = {
    "resnet50": resnet50,
    "mobilenet_v3_small": mobilenet_v3_small,
    "vit_b_16": vit_b_16,
    "bert": bert,
    "gpt2": gpt2,
}
