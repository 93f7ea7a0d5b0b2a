using System.CommandLine;
using SecureMesh.Core;
using SecureMesh.Node;

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
                ctx.WriteJson(rows);
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
            var setting = NodeSettings.Get(parse.GetValue(key)!);
            var value = await control.GetConfigAsync(setting.Key, ct);
            if (ctx.Json)
            {
                ctx.WriteJson(value);
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
            var setting = NodeSettings.Get(parse.GetValue(key)!);
            // Validated here too, so a bad value is the same error with or without a running node.
            string normalized;
            try
            {
                normalized = setting.Normalize(parse.GetValue(value)!);
            }
            catch (SecureMeshException e) when (e.Kind == SecureMeshErrorKind.InvalidInput && setting.Key == NodeSettings.Listen)
            {
                // A malformed address is a usage error (exit 2), as for 'peers add --addr' and 'run --listen'.
                throw CliApp.UsageError(e.Message);
            }
            var result = await control.SetConfigAsync(setting.Key, normalized, ct);
            if (ctx.Json)
            {
                ctx.WriteJson(result);
                return CliApp.Success;
            }
            ctx.Out.WriteLine(result.Note is null ? $"{result.Key} = {result.Value}" : $"{result.Key} = {result.Value} ({result.Note})");
            return CliApp.Success;
        }, cancellationToken));
        config.Subcommands.Add(set);
        root.Subcommands.Add(config);
    }
}
