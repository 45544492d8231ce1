"""`kclr finetune MODEL --data SOURCE --label-fraction 0.1`: semi-supervised fine-tuning."""

from __future__ import annotations

import click


@click.command("finetune")
@click.argument("model")
@click.option(
    "--data", required=True, metavar="SOURCE", help="Labelled data with train/test splits."
)
@click.option(
    "--label-fraction",
    type=float,
    default=0.1,
    show_default=True,
    help="Fraction of the labels per class: 0.01 (1%), 0.1 (10%), 1 (all).",
)
@click.option(
    "--ft-proj-selector",
    type=int,
    default=None,
    help="0 = from the encoder output; 1 = from the first projection layer "
    "(SimCLRv2). Default: 1 when the model has a projection head, else 0.",
)
@click.option(
    "--epochs", type=int, default=60, show_default=True, help="60 for 1%, 30 for 10% (paper)."
)
@click.option("--batch-size", type=int, default=1024, show_default=True)
@click.option("--learning-rate", type=float, default=0.005, show_default=True, help="Base LR.")
@click.option(
    "--learning-rate-scaling",
    type=click.Choice(["sqrt", "linear"]),
    default="sqrt",
    show_default=True,
)
@click.option("--optimizer", type=click.Choice(["lars", "sgd"]), default="lars", show_default=True)
@click.option(
    "--image-size", type=int, default=None, help="Input side (default: the model's, else 224)."
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the label subset.")
@click.option(
    "--out",
    "out",
    default=None,
    type=click.Path(file_okay=False),
    help="Save the fine-tuned encoder (+ classifier) here in the zoo format.",
)
def command(model, data, label_fraction, ft_proj_selector, epochs, batch_size, learning_rate,
            learning_rate_scaling, optimizer, image_size, seed, out) -> None:  # fmt: skip
    """Fine-tune MODEL on a fraction of the labels and report test top-1/top-5."""
    from kclr.evaluation import finetune, format_table, write_results
    from kclr.evaluation.protocols import load_model, model_image_size

    try:
        encoder, head = load_model(model, include_head=True)
        selector = ft_proj_selector if ft_proj_selector is not None else (1 if head else 0)
        result = finetune(
            encoder, data, label_fraction=label_fraction, projection_head=head,
            ft_proj_selector=selector, image_size=image_size or model_image_size(encoder),
            epochs=epochs, batch_size=batch_size, learning_rate=learning_rate,
            learning_rate_scaling=learning_rate_scaling, optimizer=optimizer, seed=seed,
        )  # fmt: skip
    except (ValueError, FileNotFoundError, OSError) as error:
        raise click.ClickException(str(error)) from None
    classifier = result.pop("model")
    result.update(
        protocol=f"finetune_{result['label_fraction']:g}", model=str(model), data=str(data)
    )
    path = write_results(model, result["protocol"], result)
    if out is not None:
        classifier.save(str(out).rstrip("/") + ".keras")
        click.echo(f"Fine-tuned classifier saved to {str(out).rstrip('/')}.keras")
    click.echo(format_table([result], ["protocol", "model", "num_labelled", "top1", "top5"]))
    if path is not None:
        click.echo(f"Results written to {path}")
