using System.CommandLine;
using SecureMesh.Cli.Json;
using SecureMesh.Core;
using SecureMesh.Node;
using SecureMesh.Node.Quarantine;

namespace SecureMesh.Cli.Commands;

/// <summary><c>config list | get KEY | set KEY VALUE</c>, through the running node when there is one.</summary>
internal static class ConfigCommands
{
    public static void Add(RootCommand root, CliConsole console)
    {
        var config = new Command("config", "Show or change settings");

        var list = new Command("list", "List every setting with its value");
        list.SetAction((parse, cancellationToken) => TrustCommands.Run(parse, console, async (ctx, control, ct) =>
        {
            var rows = await control.ListConfigAsync(ct);
            if (ctx.Json)
            {
                ctx.WriteJson(rows, CliJsonContext.Output.Settings);
                return CliApp.Success;
            }
            Table.Write(ctx.Out, ["KEY", "VALUE", "DESCRIPTION"],
                rows.Select(r => new[] { r.Key, r.Value + (r.IsDefault ? " (default)" : string.Empty), r.Description }));
            return CliApp.Success;
        }, cancellationToken));
        config.Subcommands.Add(list);

        var key = new Argument<string>("KEY") { Description = "A setting name, as 'config list' shows" };
        var get = new Command("get", "Print one setting") { key };
        get.SetAction((parse, cancellationToken) => TrustCommands.Run(parse, console, async (ctx, control, ct) =>
        {
            var setting = CliArgs.Check(() => NodeSettings.Get(parse.GetValue(key)!));
            var value = await control.GetConfigAsync(setting.Key, ct);
            if (ctx.Json)
            {
                ctx.WriteJson(value, CliJsonContext.Output.ConfigValue);
            }
            else
            {
                ctx.Out.WriteLine(value.Value);
            }
            return CliApp.Success;
        }, cancellationToken));
        config.Subcommands.Add(get);

        var value = new Argument<string>("VALUE") { Description = "The new value" };
        var set = new Command("set", "Change a setting (a running node applies it at once where it can)") { key, value };
        set.SetAction((parse, cancellationToken) => TrustCommands.Run(parse, console, async (ctx, control, ct) =>
        {
            var setting = CliArgs.Check(() => NodeSettings.Get(parse.GetValue(key)!));
            // Validated here too, so a bad value is the same error with or without a running node: a malformed value
            // is a usage error (exit 2); a scanner program that is not there or cannot run is a failure (exit 1).
            var normalized = CliArgs.Check(() => setting.Normalize(parse.GetValue(value)!));
            if (setting.Key == NodeSettings.Scanner && normalized.Length > 0
                && ScannerRunner.CheckProgram(normalized, ctx.Console.Environment("PATH")) is { } problem)
            {
                throw new SecureMeshException(SecureMeshErrorKind.NotFound, $"{problem}; the setting is unchanged");
            }
            var result = await control.SetConfigAsync(setting.Key, normalized, ct);
            if (ctx.Json)
            {
                ctx.WriteJson(result, CliJsonContext.Output.ConfigSetResult);
                return CliApp.Success;
            }
            ctx.Out.WriteLine(result.Note is null ? $"{result.Key} = {result.Value}" : $"{result.Key} = {result.Value} ({result.Note})");
            return CliApp.Success;
        }, cancellationToken));
        config.Subcommands.Add(set);
        root.Subcommands.Add(config);
    }
}
