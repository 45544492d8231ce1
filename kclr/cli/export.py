"""`kclr export MODEL --format keras|saved_model|tflite|onnx|keras-hub --out PATH`."""

from __future__ import annotations

import json

import click

FORMAT_CHOICES = ("keras", "saved_model", "tflite", "onnx", "keras-hub")


@click.command("export")
@click.argument("model")
@click.option(
    "--format",
    "fmt",
    required=True,
    type=click.Choice(FORMAT_CHOICES),
    help="keras (.keras of built-in layers), saved_model (TF Serving), tflite (mobile), "
    "onnx (ONNX runtimes), keras-hub (a KerasHubEncoder's backbone as a keras-hub preset).",
)
@click.option(
    "--out",
    required=True,
    type=click.Path(),
    help="File (.keras, .tflite, .onnx) or folder (saved_model, keras-hub) to write.",
)
@click.option(
    "--image-size", type=int, default=None, help="Input side (default: the model's, else 224)."
)
@click.option("--float16", is_flag=True, help="TFLite only: float16 weights (about half size).")
@click.option(
    "--check/--no-check",
    default=True,
    show_default=True,
    help="Load the export in a Python without kclr and compare its outputs with kclr's.",
)
@click.option("--overwrite", is_flag=True, help="Replace an existing --out (after the check).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def command(model, fmt, out, image_size, float16, check, overwrite, as_json) -> None:
    """Export MODEL so that it runs without kclr: images in [0, 1] -> features (or logits).

    MODEL is a run directory, its export/ folder, a zoo name or folder, or a fine-tuned
    classifier X.keras (`kclr finetune --out X`). See docs/export.md.
    """
    from kclr.export import api

    try:
        report = api.export(
            model,
            fmt,
            out,
            image_size=image_size,
            float16=float16,
            check=check,
            overwrite=overwrite,
        )
    except (ValueError, FileNotFoundError, FileExistsError, ImportError, OSError) as error:
        raise click.ClickException(str(error)) from None
    except api.ExportCheckError as error:
        raise click.ClickException(str(error)) from None
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    click.echo(api.format_reports([report]))
    click.echo(f"Exported {report['output']} of {model} to {report['path']}")
