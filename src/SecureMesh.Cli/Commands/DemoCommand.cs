using System.CommandLine;
using System.Globalization;
using SecureMesh.Cli.Json;
using SecureMesh.Core;
using SecureMesh.Node;

namespace SecureMesh.Cli.Commands;

/// <summary>
/// <c>demo [--size SIZE] [--keep]</c>: three in-process peers on loopback in a fresh temporary folder share a sample
/// file from two of them and swarm-download it in the third, step by step. Never touches the user's data directory.
/// </summary>
internal static class DemoCommand
{
    /// <summary>Default size of the sample file.</summary>
    public const long DefaultSize = 64L << 20;

    /// <summary>Largest sample file, so the demo stays quick.</summary>
    public const long MaxSize = 256L << 20;

    /// <summary>Smallest sample file.</summary>
    public const long MinSize = 1L << 10;

    public static void Add(RootCommand root, CliConsole console)
    {
        var size = new Option<string?>("--size")
        {
            Description = $"Size of the sample file (e.g. 3m, 64MiB; default 64MiB, at most {MaxSize >> 20}MiB)",
            HelpName = "SIZE",
        };
        var keep = new Option<bool>("--keep") { Description = "Keep the demo folder afterwards (its path is printed)" };
        var demo = new Command("demo", "A few local peers on loopback share and fetch a sample, to see it work (uses a temporary folder only; --home is ignored)")
        {
            size,
            keep,
        };
        demo.SetAction((parse, cancellationToken) => CliApp.ExecuteAsync(parse, console, async (ctx, ct) =>
        {
            var bytes = ParseSize(parse.GetValue(size));
            using var stop = StopSignals.Watch(ct);
            try
            {
                var summary = await DemoRunner.RunAsync(ctx, bytes, parse.GetValue(keep), stop.Token);
                if (ctx.Json)
                {
                    ctx.WriteJson(summary, CliJsonContext.Output.DemoSummary);
                }
                return CliApp.Success;
            }
            catch (OperationCanceledException) when (stop.Token.IsCancellationRequested)
            {
                ctx.Err.WriteLine("interrupted");
                return 130;
            }
        }, cancellationToken));
        root.Subcommands.Add(demo);
    }

    /// <summary>Parses sizes like <c>3145728</c>, <c>512k</c>, <c>3m</c>, <c>64MiB</c>; null gives the default.</summary>
    internal static long ParseSize(string? value)
    {
        if (string.IsNullOrWhiteSpace(value))
        {
            return DefaultSize;
        }
        // The same size syntax as the settings (3m, 64MiB, 1g).
        var bytes = SettingDefinition.ParseSize(value);
        if (bytes < 0)
        {
            throw CliApp.UsageError($"--size: '{value}' is not a size such as 3m or 64MiB (at most {MaxSize >> 20}MiB)");
        }
        if (bytes < MinSize || bytes > MaxSize)
        {
            throw CliApp.UsageError($"--size must be between 1KiB and {MaxSize >> 20}MiB, got {value}");
        }
        return bytes;
    }
}
