"""Paper presets, constructed once; parameter counts pinned to numbers derived by hand from the configs.

Notation: conv(cin, cout, k) = cin*cout*k (+ cout bias); lin(a, b) = a*b + b; LN(d) = BN(d) = 2d
(BatchNorm running stats are buffers, not parameters).

ResNet18-1D, MERL (utils/resnet1d.py ResNet18, utils/utils_builder.py downconv + AttentionPool2d):
  stem   conv(12,64,7) no bias + BN(64)                              = 5376 + 128             = 5,504
  layer1 2 x [conv(64,64,3) + BN + conv(64,64,3) + BN]               = 2 * (2*12288 + 256)    = 49,664
  layer2 [24576 + 256 + 49152 + 256 + shortcut 8192 + 256] + [2*49152 + 512]  = 82,688 + 98,816 = 181,504
  layer3 [98304 + 512 + 196608 + 512 + 32768 + 512] + [2*196608 + 1024]       = 329,216 + 394,240 = 723,456
  layer4 [393216 + 1024 + 786432 + 1024 + 131072 + 1024] + [2*786432 + 2048]  = 1,313,792 + 1,574,912
                                                                               = 2,888,704
  backbone                                                                     = 3,848,832
  downconv conv(512,256,1) + bias                                 = 131,328
  attention pool: pos (313+1)*256 = 80,384; cls 256; MHA in 3*256*256+768 = 197,376, out 65,792;
                  c_proj 65,792                                   = 409,600
  total                                                           = 4,389,760

ViT-1D, MERL vit_tiny (utils/vit1d.py: width 192, depth 12, heads 3 x dim_head 64, mlp 768, patch 50):
  patch conv(12,192,50) no bias = 115,200; pos 100*192 = 19,200
  block: LN 384 + qkv lin(192,576) 111,168 + out lin(192,192) 37,056 + LN 384
         + lin(192,768) 148,224 + lin(768,192) 147,648          = 444,864; x 12 = 5,338,368
  final LN 384                                                    total = 5,473,152

ConvNeXt-V2-1D (ESI model/convnextv2.py), a block of width d: dwconv 7d + d, LN 2d, lin(d,4d) 4d^2+4d,
GRN 8d, lin(4d,d) 4d^2+d  = 8d^2 + 23d. Stem conv(12,d0,4)+d0 + LN 2d0; downsample i: LN 2d_i +
conv(d_i,d_{i+1},2) + d_{i+1}; final LN 2d3.
  base (depths 3,3,27,3; dims 128,256,512,1024):
    stem 6,144 + 128 + 256 = 6,528; downsample (256 + 65,792) + (512 + 262,656) + (1,024 + 1,049,600)
         = 1,379,840
    blocks 3*(131,072+2,944) + 3*(524,288+5,888) + 27*(2,097,152+11,776) + 3*(8,388,608+23,552)
         = 402,048 + 1,590,528 + 56,941,056 + 25,236,480 = 84,170,112; final LN 2,048
    total = 6,528 + 1,379,840 + 84,170,112 + 2,048 = 85,558,528
  (``_convnext_count`` evaluates the same formula for every size and is compared to the module.)

HeartLang (modeling_pretrain.py HeartLang; backbone_vqhbr.py; modeling_vqhbr.py vqhbr):
  beat transformer of width w, in_dim c, depth L, heads h x 64 (inner i = 64h), mlp m, 256 tokens:
    token conv(c,w,3) no bias 3cw; mask w; cls w; pos 257w; lead 16w; time 16w; final LN 2w
    layer: LN 2w + qkv (no bias) 3iw + out lin(i,w) iw + w + LN 2w + lin(w,m) + lin(m,w)
  sentence encoder (c=96, w=768, L=12, h=8 -> i=512, m=1024):
    221,184 + 768 + 768 + 197,376 + 12,288 + 12,288 + 1,536
    + 12 * (1,536 + 1,179,648 + 393,984 + 1,536 + 787,456 + 787,200 = 3,151,360) = 38,262,528
  MSM head lin(768, 8192) = 6,299,648   (original ST_ECGFormer incl. lm_head: 44,562,176)
  VQ-HBR: encoder (c=96, L=4, h=2 -> i=128, m=2048): layer 1,536 + 294,912 + 99,072 + 1,536
          + 1,574,912 + 1,573,632 = 3,545,600; total 221,184 + 1,536 + 197,376 + 24,576 + 1,536
          + 4 * 3,545,600 = 14,628,608 in the original, 14,627,840 here: VQ-HBR never masks, so its
          encoder and decoder have no [MASK] vector (an unused parameter breaks DDP without the unused-parameter search)
          decoder (c=128, L=2): 294,912 + 1,536 + 197,376 + 24,576 + 1,536 + 2 * 3,545,600 = 7,611,136 (7,610,368 here)
          encode task lin(768,768) + lin(768,128) = 590,592 + 98,432 = 689,024
          decode task lin(768,768) + lin(768,96)  = 590,592 + 73,824 = 664,416
          trainable total = 23,593,184 (23,591,648 here); codebook 8192 x 128 = 1,048,576 (a buffer, EMA-updated)
"""

from __future__ import annotations

import pytest
import torch

from ecg_encoders.ecg import convnextv2_1d, heartlang, resnet1d, vit1d


def n_params(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def _convnext_count(depths: tuple[int, ...], dims: tuple[int, ...], cin: int = 12) -> int:
    n = cin * dims[0] * 4 + dims[0] + 2 * dims[0]
    n += sum(2 * dims[i] + 2 * dims[i] * dims[i + 1] + dims[i + 1] for i in range(3))
    n += sum(d * (8 * w * w + 23 * w) for d, w in zip(depths, dims))
    return n + 2 * dims[-1]


def test_resnet18_merl_count() -> None:
    m = resnet1d.build_resnet18_1d("merl")
    assert n_params(m.backbone) == 3_848_832
    assert n_params(m.downconv) == 131_328
    assert n_params(m.pool) == 409_600
    assert n_params(m) == 4_389_760
    assert m.n_tokens == 313  # MERL's AttentionPool2d(spacial_dim=313)


def test_vit_merl_tiny_count() -> None:
    assert n_params(vit1d.build_vit1d("merl_vit_tiny")) == 5_473_152


@pytest.mark.parametrize("preset", ["atto", "femto", "pico", "nano", "convnext_tiny", "tiny"])
def test_convnext_counts_follow_the_formula(preset: str) -> None:
    """base (the largest) is constructed once, in its own test below."""
    cfg = convnextv2_1d.PRESETS[preset]
    assert n_params(convnextv2_1d.build_convnextv2_1d(preset)) == _convnext_count(cfg["depths"], cfg["dims"])


def test_convnext_base_esi_count() -> None:
    cfg = convnextv2_1d.PRESETS["base"]
    expected = _convnext_count(cfg["depths"], cfg["dims"])
    assert expected == 85_558_528
    assert n_params(convnextv2_1d.build_convnextv2_1d("base")) == expected


def test_heartlang_base_counts() -> None:
    enc = heartlang.build_heartlang("base")
    assert n_params(enc) == 38_262_528
    assert n_params(heartlang.build_msm_head("base")) == 6_299_648
    vq = heartlang.build_heartbeat_vq("base")
    w = 768  # the original's unused [MASK] vector, absent here in encoder and decoder
    assert n_params(vq.encoder) == 14_628_608 - w
    assert n_params(vq.decoder) == 7_611_136 - w
    assert n_params(vq.encode_task_layer) == 689_024 and n_params(vq.decode_task_layer) == 664_416
    assert n_params(vq) == 23_593_184 - 2 * w
    assert vq.quantizer.codebook.shape == (8192, 128)
