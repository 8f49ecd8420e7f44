import pytest
import torch

from bnn_flow.nets import ARCHS, build_net, weight_storage

SHAPES = {"bcnn": [(1, 28), (3, 32), (3, 100)], "bvgg16": [(3, 32)], "cnv": [(3, 32)],
          "tfc": [(1, 28)], "sfc": [(1, 28)], "lfc": [(1, 28)]}


@pytest.mark.parametrize("arch", list(ARCHS))
@pytest.mark.parametrize("bits", [(1, 1), (2, 2)])
def test_forward_backward_shapes(arch, bits):
    for c, s in SHAPES[arch]:
        net = build_net(arch, num_classes=7, in_channels=c, image_size=s, weight_bits=bits[0],
                        act_bits=bits[1], width=0.125)
        x = torch.rand(2, c, s, s, requires_grad=True)
        y = net(x)
        assert y.shape == (2, 7)
        y.sum().backward()
        assert x.grad is not None and torch.isfinite(x.grad).all()
        grads = [p.grad for p in net.parameters() if p.requires_grad]
        assert all(g is not None for g in grads)


@pytest.mark.parametrize("arch", list(ARCHS))
def test_float_twin_same_structure(arch):
    c, s = SHAPES[arch][0]
    q = build_net(arch, num_classes=10, in_channels=c, image_size=s, width=0.25)
    f = build_net(arch, num_classes=10, in_channels=c, image_size=s, width=0.25, float_twin=True)
    assert sum(p.numel() for p in q.parameters()) == sum(p.numel() for p in f.parameters())
    assert f(torch.rand(2, c, s, s)).shape == (2, 10)
    assert not any("Quant" in type(m).__name__ for m in f.modules())


def test_binary_layers_see_bipolar_values_and_one_padding():
    net = build_net("bcnn", num_classes=10, in_channels=1, image_size=28, width=0.125).eval()
    seen = {}
    pads = [m for m in net.features if isinstance(m, torch.nn.ConstantPad2d)]
    assert pads[0].value == 0.0 and all(p.value == 1.0 for p in pads[1:])
    hook = pads[1].register_forward_hook(lambda m, i, o: seen.update(out=o))
    net(torch.rand(2, 1, 28, 28))
    hook.remove()
    assert set(seen["out"].unique().tolist()) <= {-1.0, 1.0}


def test_bcnn_layouts_match_the_spec():
    convs = lambda n: [m.out_channels for m in n.modules() if isinstance(m, torch.nn.Conv2d)]  # noqa: E731
    n28 = build_net("bcnn", num_classes=10, in_channels=1, image_size=28)
    assert convs(n28) == [64, 64, 64, 128, 128, 256, 256, 256, 256]
    n32 = build_net("bcnn", num_classes=10, in_channels=3, image_size=32)
    assert convs(n32) == [128, 128, 128, 256, 256, 512, 512, 512, 512]
    fcs = [m.out_features for m in n32.modules() if isinstance(m, torch.nn.Linear)]
    assert fcs == [1024, 1024, 10]
    n100 = build_net("bcnn", num_classes=4, in_channels=3, image_size=100)
    assert convs(n100) == [64] + convs(n32)
    vgg = build_net("bvgg16", num_classes=10, in_channels=3, image_size=32)
    assert len(convs(vgg)) == 13


def test_storage_counts_packed_bits():
    net = build_net("tfc", num_classes=10, in_channels=1, image_size=28, in_bits=1)
    st = weight_storage(net, 1)
    n_w = 784 * 64 + 64 * 64 * 2 + 64 * 10
    assert st["quantized_weights"] == n_w
    assert st["packed_bytes"] == n_w // 8 + 4 * (64 * 3)
    assert st["float32_bytes"] > 25 * n_w // 8


def test_unsupported_bits_and_arch():
    with pytest.raises(ValueError, match="weight_bits=3"):
        build_net("bcnn", num_classes=10, in_channels=1, image_size=28, weight_bits=3)
    with pytest.raises(ValueError, match="unknown network"):
        build_net("resnet", num_classes=10, in_channels=1, image_size=28)
    with pytest.raises(ValueError, match="in_bits=1 needs a bipolar"):
        build_net("bcnn", num_classes=10, in_channels=1, image_size=28, in_bits=1)


def _randomized_bvgg():
    """A small B-VGG16 with random BatchNorm affines (some scales negative) and running statistics."""
    torch.manual_seed(0)
    net = build_net("bvgg16", num_classes=10, in_channels=3, image_size=32, width=0.125)
    for m in net.modules():
        if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            m.weight.data.normal_()
            m.bias.data.normal_()
            m.running_mean.normal_(0, 5)
            m.running_var.uniform_(1, 30)
    return net


@pytest.mark.parametrize("pool_before_norm,padding_weight_grad", [(True, True), (False, False), (True, False)])
def test_training_variants_compute_the_exported_function(pool_before_norm, padding_weight_grad):
    """With the norms' statistics fixed, the training-time forward equals the eval (exported) forward exactly."""
    net = _randomized_bvgg()
    assert any(m.weight.min() < 0 for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d))
    x = torch.rand(8, 3, 32, 32)
    ref = net.eval()(x)
    net.train()
    for m in net.modules():
        if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
            m.eval()
    net.pool_before_norm, net.padding_weight_grad = pool_before_norm, padding_weight_grad
    assert torch.equal(net(x), ref)


def test_pool_before_norm_takes_batch_statistics_after_the_pool():
    net = _randomized_bvgg().train()
    net.pool_before_norm = True
    features = list(net.features)
    i = next(i for i, m in enumerate(features) if isinstance(m, torch.nn.MaxPool2d)) - 2
    seen = {}
    hook = features[i].register_forward_hook(lambda m, inp, out: seen.update(shape=inp[0].shape))
    net(torch.rand(4, 3, 32, 32))
    hook.remove()
    assert seen["shape"][-2:] == (16, 16)


def test_padding_weight_grad_off_drops_only_the_pads_share():
    """Weight gradient as if the binary maps were zero-padded; same input gradient as with the +1 pad."""
    from torch.nn import functional as F  # noqa: N812

    from bnn_flow.nets.common import _conv_without_pad_weight_grad

    net = _randomized_bvgg().train()
    pad, conv = net.features[5], net.features[6]  # the second block: a +1 pad of a binary map, then its conv
    assert isinstance(pad, torch.nn.ConstantPad2d) and pad.value == 1.0
    x = torch.where(torch.rand(2, conv.in_channels, 32, 32) < 0.5, -1.0, 1.0).requires_grad_(True)
    g = torch.randn(2, conv.out_channels, 32, 32)
    grads = []
    for drop in (False, True):
        net.zero_grad()
        x.grad = None
        y = _conv_without_pad_weight_grad(pad, conv, x) if drop else conv(pad(x))
        (y * g).sum().backward()
        grads.append((conv.weight.grad.clone(), x.grad.clone()))
    torch.testing.assert_close(grads[0][1], grads[1][1])
    net.zero_grad()
    (conv(F.pad(x.detach(), (1, 1, 1, 1), value=0.0)) * g).sum().backward()
    torch.testing.assert_close(grads[1][0], conv.weight.grad)
    assert not torch.allclose(grads[0][0], grads[1][0])
