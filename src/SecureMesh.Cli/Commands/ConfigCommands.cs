using System.CommandLine;
using SecureMesh.Node;

namespace SecureMesh.Cli.Commands;

/// <summary><c>config list | get KEY | set KEY VALUE</c>.</summary>
internal static class ConfigCommands
{
    public static void Add(RootCommand root, CliConsole console)
    {
        var config = new Command("config", "Show or change settings");

        var list = new Command("list", "List every setting with its value");
        list.SetAction(parse => CliApp.Execute(parse, console, ctx =>
        {
            using var db = TrustCommands.OpenDatabase(ctx);
            var rows = NodeSettings.All.Select(s =>
            {
                var value = db.Config.Get(s.Key);
                return new { key = s.Key, value = value ?? s.Default, isDefault = value is null, description = s.Description };
            }).ToList();
            if (ctx.Json)
            {
                ctx.WriteJson(rows);
                return CliApp.Success;
            }
            Table.Write(ctx.Out, ["KEY", "VALUE", "DESCRIPTION"],
                rows.Select(r => new[] { r.key, r.value + (r.isDefault ? " (default)" : string.Empty), r.description }));
            return CliApp.Success;
        }));
        config.Subcommands.Add(list);

        var key = new Argument<string>("KEY") { Description = "A setting name, as 'config list' shows" };
        var get = new Command("get", "Print one setting") { key };
        get.SetAction(parse => CliApp.Execute(parse, console, ctx =>
        {
            var setting = NodeSettings.Get(parse.GetValue(key)!);
            using var db = TrustCommands.OpenDatabase(ctx);
            var value = db.Config.Get(setting.Key) ?? setting.Default;
            if (ctx.Json)
            {
                ctx.WriteJson(new { key = setting.Key, value });
            }
            else
            {
                ctx.Out.WriteLine(value);
            }
            return CliApp.Success;
        }));
        config.Subcommands.Add(get);

        var value = new Argument<string>("VALUE") { Description = "The new value" };
        var set = new Command("set", "Change a setting (a running node picks it up)") { key, value };
        set.SetAction(parse => CliApp.Execute(parse, console, ctx =>
        {
            var setting = NodeSettings.Get(parse.GetValue(key)!);
            var normalized = setting.Normalize(parse.GetValue(value)!);
            using var db = TrustCommands.OpenDatabase(ctx);
            db.Config.Set(setting.Key, normalized);
            ctx.Out.WriteLine($"{setting.Key} = {normalized}");
            return CliApp.Success;
        }));
        config.Subcommands.Add(set);
        root.Subcommands.Add(config);
    }
}
