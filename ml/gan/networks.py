"""The generators and discriminators of the GAN variants, built from a config and the data's
shape: MLPs for vectors (`ml.core.nets.mlp`), DCGAN's convolutional pair for images, either of
them conditioned on class labels when the config says `conditional`.

Every network works on flat rows: a generator maps z [B, latent_dim] (and labels [B]) to
x [B, data_dim], a discriminator maps x [B, data_dim] (and labels [B]) to a score [B, 1];
the conv networks reshape to and from images [B, C, H, W] inside, so the loop, the metrics and
the queries see images as rows of C*H*W pixels.

- MLP (`architecture="mlp"`): Linear -> [BatchNorm] -> activation per hidden layer (the
  discriminator's is `discriminator_activation` when set, `activation` otherwise). An
  unconditional MLP is a plain `nn.Sequential`, as model files have always stored it.
- Conv (`architecture="conv"`, Radford et al. 2015, DCGAN): the generator projects z to
  [generator_channels[0], 4, 4], then each transposed convolution (kernel 4, stride 2) doubles
  the size, with batch norm and `activation` (ReLU by default) between, tanh at the end (the
  data is in [-1, 1]); the discriminator mirrors it with strided convolutions, LeakyReLU 0.2
  (or `discriminator_activation`), batch norm after every convolution but the first, and a
  linear score. Weights start from N(0, 0.02) (batch norm's scales from N(1, 0.02)). Images
  must be square with a side of 4 * 2^k, 8 to 64 (8x8 digits, 16x16, 32x32, 64x64), grey or
  colour; k layers of each net's channel list are used (the first k).
- Conditioning (Mirza & Osindero 2014): a learned label embedding of `label_embedding_dim`
  numbers is concatenated to z in the generator, and to the discriminator's input (as
  constant planes beside the image's channels, for the conv discriminator).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
from torch import nn

from ml.core.cost import mlp_params
from ml.core.errors import ConfigError
from ml.core.nets import activation, mlp

if TYPE_CHECKING:
    from ml.gan.adversarial import AdversarialConfig

MIN_SIDE, MAX_SIDE = 8, 64


def conv_layers(shape: tuple[int, ...]) -> int | None:
    """The number k of stride-2 layers for images of `shape` [C, H, W] with H = W = 4 * 2^k
    in 8..64; None when the shape is not such an image."""
    if len(shape) != 3 or shape[1] != shape[2]:
        return None
    side = shape[1]
    if side < MIN_SIDE or side > MAX_SIDE or side & (side - 1):
        return None
    return int(math.log2(side // 4))


def uses_conv(config: AdversarialConfig, shape: tuple[int, ...]) -> bool:
    """Whether `config` builds conv networks for data of `shape`; ConfigError when it asks
    for them and the data are not images of a supported size."""
    if config.architecture == "mlp":
        return False
    if conv_layers(shape) is not None:
        return True
    if config.architecture == "auto":
        return False
    raise ConfigError(
        f"conv networks need square images [C, H, W] with H = W in 8, 16, 32, 64; the data's "
        f"samples have shape {list(shape)}",
        field="architecture",
    )


def check_channels(config: AdversarialConfig, shape: tuple[int, ...]) -> int:
    """k (see `conv_layers`), after checking both channel lists have k widths."""
    k = conv_layers(shape)
    assert k is not None
    for name in ("generator_channels", "discriminator_channels"):
        if len(getattr(config, name)) < k:
            raise ConfigError(f"{shape[1]}x{shape[2]} images need {k} widths in {name}", field=name)
    return k


class Conditioned(nn.Module):
    """An MLP fed its input with the label's embedding concatenated: net([x, e(y)])."""

    def __init__(self, net: nn.Module, n_classes: int, embedding_dim: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(n_classes, embedding_dim)
        self.net = net

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([x, self.embedding(labels)], dim=1))


class ConvGenerator(nn.Module):
    """z [B, latent_dim] (and labels [B]) -> images as rows [B, C*H*W] in [-1, 1]."""

    def __init__(
        self,
        config: AdversarialConfig,
        shape: tuple[int, ...],
        n_classes: int | None,
    ) -> None:
        super().__init__()
        k = check_channels(config, shape)
        widths = list(config.generator_channels[:k])
        self.embedding = (
            nn.Embedding(n_classes, config.label_embedding_dim) if n_classes is not None else None
        )
        in_dim = config.latent_dim + (config.label_embedding_dim if n_classes is not None else 0)
        bn = config.generator_batch_norm
        self.first = widths[0]
        self.project = nn.Sequential(
            nn.Linear(in_dim, widths[0] * 16, bias=not bn),
            *([nn.BatchNorm1d(widths[0] * 16)] if bn else []),
            activation(config.activation),
        )
        layers: list[nn.Module] = []
        for i in range(k):
            last = i == k - 1
            out = shape[0] if last else widths[i + 1]
            layers.append(nn.ConvTranspose2d(widths[i], out, 4, 2, 1, bias=last or not bn))
            if last:
                layers.append(nn.Tanh())
            else:
                if bn:
                    layers.append(nn.BatchNorm2d(out))
                layers.append(activation(config.activation))
        self.body = nn.Sequential(*layers)
        dcgan_init(self)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.embedding is not None:
            assert labels is not None, "a conditional generator needs labels"
            z = torch.cat([z, self.embedding(labels)], dim=1)
        h = self.project(z).view(-1, self.first, 4, 4)
        return self.body(h).flatten(1)


class ConvDiscriminator(nn.Module):
    """Images as rows x [B, C*H*W] (and labels [B]) -> a score [B, 1]."""

    def __init__(
        self,
        config: AdversarialConfig,
        shape: tuple[int, ...],
        n_classes: int | None,
    ) -> None:
        super().__init__()
        k = check_channels(config, shape)
        widths = list(config.discriminator_channels[:k])
        self.shape = tuple(shape)
        self.embedding = (
            nn.Embedding(n_classes, config.label_embedding_dim) if n_classes is not None else None
        )
        last = shape[0] + (config.label_embedding_dim if n_classes is not None else 0)
        bn = config.discriminator_batch_norm
        layers: list[nn.Module] = []
        for i, width in enumerate(widths):
            norm = bn and i > 0
            layers.append(nn.Conv2d(last, width, 4, 2, 1, bias=not norm))
            if norm:
                layers.append(nn.BatchNorm2d(width))
            layers.append(discriminator_activation(config, conv=True))
            last = width
        layers += [nn.Flatten(), nn.Linear(last * 16, 1)]
        self.body = nn.Sequential(*layers)
        dcgan_init(self)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        images = x.view(-1, *self.shape)  # [B, C, H, W]
        if self.embedding is not None:
            assert labels is not None, "a conditional discriminator needs labels"
            planes = self.embedding(labels)[:, :, None, None]  # [B, e, 1, 1]
            planes = planes.expand(-1, -1, self.shape[1], self.shape[2])
            images = torch.cat([images, planes], dim=1)
        return self.body(images)


def discriminator_activation(config: AdversarialConfig, *, conv: bool) -> nn.Module:
    """The discriminator's hidden activation: `discriminator_activation` when the config sets
    it; otherwise DCGAN's LeakyReLU with slope 0.2 in the conv discriminator (Radford et al.
    2015, Section 3: they found the leaky rectifier "to work well" there, while the generator
    uses ReLU) and the shared `activation` in the MLP one, as models have always been built."""
    if config.discriminator_activation is not None:
        return activation(config.discriminator_activation)
    return nn.LeakyReLU(0.2) if conv else activation(config.activation)


def dcgan_init(module: nn.Module) -> None:
    """DCGAN's initialisation: weights N(0, 0.02), batch norm scales N(1, 0.02), biases 0."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d | nn.Linear):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


def make_generator(
    config: AdversarialConfig, shape: int | tuple[int, ...], n_classes: int | None = None
) -> nn.Module:
    """The generator for samples of `shape` (an int: vectors of that size), conditioned on
    `n_classes` labels when given."""
    shape = (shape,) if isinstance(shape, int) else shape
    if uses_conv(config, shape):
        return ConvGenerator(config, shape, n_classes)
    extra = config.label_embedding_dim if n_classes is not None else 0
    net = mlp(
        config.latent_dim + extra,
        config.generator_hidden,
        math.prod(shape),
        act=config.activation,
        batch_norm=config.generator_batch_norm,
    )
    return net if n_classes is None else Conditioned(net, n_classes, config.label_embedding_dim)


def make_discriminator(
    config: AdversarialConfig, shape: int | tuple[int, ...], n_classes: int | None = None
) -> nn.Module:
    """The discriminator (or critic) for samples of `shape`, conditioned when `n_classes`."""
    shape = (shape,) if isinstance(shape, int) else shape
    if uses_conv(config, shape):
        return ConvDiscriminator(config, shape, n_classes)
    extra = config.label_embedding_dim if n_classes is not None else 0
    act = config.discriminator_activation or config.activation
    net = mlp(math.prod(shape) + extra, config.discriminator_hidden, 1, act=act)
    return net if n_classes is None else Conditioned(net, n_classes, config.label_embedding_dim)


def network_macs(
    config: AdversarialConfig, shape: tuple[int, ...], conditional: bool
) -> tuple[int, int]:
    """Multiply-accumulates per sample of a forward pass of (G, D), layer by layer: an MLP's
    weights, or each conv layer's kernel size x input channels x output channels x output
    pixels (batch norm counted as two per unit)."""
    extra = config.label_embedding_dim if conditional else 0
    if not uses_conv(config, shape):
        data_dim = math.prod(shape)
        g = mlp_params([config.latent_dim + extra, *config.generator_hidden, data_dim])
        if config.generator_batch_norm:
            g += 2 * sum(config.generator_hidden)
        d = mlp_params([data_dim + extra, *config.discriminator_hidden, 1])
        return g, d
    k = check_channels(config, shape)
    gw = list(config.generator_channels[:k])
    g = (config.latent_dim + extra + 1) * gw[0] * 16 + 2 * gw[0] * 16
    side = 4
    for i in range(k):
        out = shape[0] if i == k - 1 else gw[i + 1]
        side *= 2
        g += 16 * gw[i] * out * side * side + 2 * out * side * side
    dw = list(config.discriminator_channels[:k])
    d, last, side = 0, shape[0] + extra, shape[1]
    for width in dw:
        side //= 2
        d += 16 * last * width * side * side + 2 * width * side * side
        last = width
    d += last * 16 + 1
    return g, d
