"""`kclr finetune MODEL --data SOURCE --label-fraction 0.1`: semi-supervised fine-tuning."""

from __future__ import annotations

import click

from kclr.cli._options import config_files_option, overrides_option


@click.command("finetune")
@click.argument("model")
@click.option(
    "--data", required=True, metavar="SOURCE", help="Labelled data with train/test splits."
)
@click.option(
    "--label-fraction",
    type=float,
    default=None,
    help="Fraction of the labels per class: 0.01 (1%), 0.1 (10%), 1 (all).",
)
@click.option(
    "--ft-proj-selector",
    type=int,
    default=None,
    help="0 = from the encoder output; 1 = from the first projection layer "
    "(SimCLRv2). Default: 1 when the model has a projection head, else 0.",
)
@click.option("--epochs", type=int, default=None, help="60 for 1%, 30 for 10% (paper).")
@click.option("--batch-size", type=int, default=None)
@click.option("--learning-rate", type=float, default=None, help="Base LR.")
@click.option("--learning-rate-scaling", type=click.Choice(["sqrt", "linear"]), default=None)
@click.option("--optimizer", type=click.Choice(["lars", "sgd"]), default=None)
@click.option(
    "--image-size", type=int, default=None, help="Input side (default: the model's, else 224)."
)
@click.option("--seed", type=int, default=None, help="Seed of the label subset.")
@click.option("--preset", default=None, help="Read the `finetune` spec from this preset.")
@config_files_option
@overrides_option
@click.option(
    "--out",
    "out",
    default=None,
    type=click.Path(file_okay=False),
    help="Save the fine-tuned encoder (+ classifier) here in the zoo format.",
)
def command(model, data, label_fraction, ft_proj_selector, epochs, batch_size, learning_rate,
            learning_rate_scaling, optimizer, image_size, seed, preset, config_files, overrides,
            out) -> None:  # fmt: skip
    """Fine-tune MODEL on a fraction of the labels and report test top-1/top-5.

    The settings are the `finetune` protocol spec: from the run config saved with MODEL
    (or --preset / --config / --set finetune.config.KEY=VALUE), then the options.
    """
    from kclr import registry, spec
    from kclr.cli._protocol import protocol_spec
    from kclr.evaluation import format_table, write_results
    from kclr.zoo.door import open_model

    options = dict(
        label_fraction=label_fraction, ft_proj_selector=ft_proj_selector, epochs=epochs,
        batch_size=batch_size, learning_rate=learning_rate,
        learning_rate_scaling=learning_rate_scaling, optimizer=optimizer, seed=seed,
    )  # fmt: skip
    try:
        opened = open_model(model)
        protocol = spec.build(
            registry.protocols,
            protocol_spec("finetune", opened, preset, config_files, overrides, options),
            where="finetune",
        )
        result = protocol.run(
            opened.encoder, data, projection_head=opened.projection_head,
            image_size=image_size or opened.image_size or 224,
        )  # fmt: skip
    except (ValueError, FileNotFoundError, OSError) as error:
        raise click.ClickException(str(error)) from None
    except KeyError as error:  # an unknown model name: its message, with the closest names
        raise click.ClickException(str(error.args[0])) from None
    classifier = result.pop("model")
    result.update(
        protocol=f"finetune_{result['label_fraction']:g}", model=str(model), data=str(data)
    )
    path = write_results(model, result["protocol"], result)
    if out is not None:
        from kclr import durable

        with durable.atomic_path(str(out).rstrip("/") + ".keras") as staged:
            classifier.save(staged)  # a killed process leaves the old file or none, never half
        click.echo(f"Fine-tuned classifier saved to {str(out).rstrip('/')}.keras")
    click.echo(format_table([result], ["protocol", "model", "num_labelled", "top1", "top5"]))
    if path is not None:
        click.echo(f"Results written to {path}")
