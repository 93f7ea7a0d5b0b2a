using System.CommandLine;
using System.Globalization;
using SecureMesh.Cli.Json;
using SecureMesh.Core;
using SecureMesh.Node.Quarantine;
using SecureMesh.Storage;

namespace SecureMesh.Cli.Commands;

/// <summary><c>quarantine list | show ID | release ID [--to DIR] | delete ID</c>.</summary>
internal static class QuarantineCommands
{
    public static void Add(RootCommand root, CliConsole console)
    {
        var quarantine = new Command("quarantine", "Downloads waiting in quarantine: inspect, release or delete them");

        var list = new Command("list", "List quarantined downloads with their state and the reason they are held");
        list.SetAction(parse => CliApp.Execute(parse, console, ctx =>
        {
            using var db = TrustCommands.OpenDatabase(ctx);
            var items = db.Quarantine.List();
            if (ctx.Json)
            {
                ctx.WriteJson(items.Select(ToJson), CliJsonContext.Output.QuarantineItems);
                return CliApp.Success;
            }
            if (items.Count == 0)
            {
                ctx.Out.WriteLine("quarantine is empty");
                return CliApp.Success;
            }
            Table.Write(ctx.Out, ["ID", "STATE", "SIZE", "NAME", "REASON"],
                items.Select(i => new[] { Num(i.Id), i.StateName, Size(i.Size), i.SafeName, i.Reason ?? "-" }));
            return CliApp.Success;
        }));
        quarantine.Subcommands.Add(list);

        var idArg = new Argument<string>("ID") { Description = "A quarantine item ID, as 'quarantine list' shows" };
        var show = new Command("show", "Show one quarantined download in full") { idArg };
        show.SetAction(parse => CliApp.Execute(parse, console, ctx =>
        {
            using var db = TrustCommands.OpenDatabase(ctx);
            var item = Manager(db, ctx).Get(ParseId(parse.GetValue(idArg)));
            if (ctx.Json)
            {
                ctx.WriteJson(ToJson(item), CliJsonContext.Output.QuarantineJson);
                return CliApp.Success;
            }
            var publisher = item.Publisher is null ? "-" : $"{item.Publisher} ({item.Publisher.Fingerprint})";
            Table.Write(ctx.Out, ["FIELD", "VALUE"],
            [
                ["id", Num(item.Id)],
                ["content", item.ContentId],
                ["name", item.SafeName],
                ["announced", item.AnnouncedName is null ? "-" : TerminalText.Escape(item.AnnouncedName)],
                ["size", Size(item.Size)],
                ["state", item.StateName],
                ["reason", item.Reason ?? "-"],
                ["verified", item.Verified ? "yes" : "no"],
                ["publisher", publisher],
                ["sources", item.SourcePeers.Count == 0 ? "-" : string.Join(", ", item.SourcePeers)],
                ["path", item.Path ?? "-"],
                ["released to", item.ReleasedPath ?? "-"],
                ["created", TrustCommands.Time(item.Created)],
                ["updated", TrustCommands.Time(item.Updated)],
            ]);
            return CliApp.Success;
        }));
        quarantine.Subcommands.Add(show);

        var to = new Option<string?>("--to") { Description = "Folder to release into (default: the download-dir setting)", HelpName = "DIR" };
        var release = new Command("release", "Release a held download to the download folder (never overwrites)") { idArg, to };
        release.SetAction(parse => CliApp.Execute(parse, console, ctx =>
        {
            using var db = TrustCommands.OpenDatabase(ctx);
            var item = Manager(db, ctx).Release(ParseId(parse.GetValue(idArg)), parse.GetValue(to));
            if (ctx.Json)
            {
                ctx.WriteJson(ToJson(item), CliJsonContext.Output.QuarantineJson);
            }
            else
            {
                ctx.Out.WriteLine($"released {item.Id} to {item.ReleasedPath}");
            }
            return CliApp.Success;
        }));
        quarantine.Subcommands.Add(release);

        var delete = new Command("delete", "Delete a quarantined download and its data") { idArg };
        delete.SetAction(parse => CliApp.Execute(parse, console, ctx =>
        {
            using var db = TrustCommands.OpenDatabase(ctx);
            var item = Manager(db, ctx).Delete(ParseId(parse.GetValue(idArg)));
            ctx.Out.WriteLine($"deleted {item.Id} ({item.SafeName})");
            return CliApp.Success;
        }));
        quarantine.Subcommands.Add(delete);

        root.Subcommands.Add(quarantine);
    }

    private static QuarantineManager Manager(SecureMeshDatabase db, CliContext ctx) => new(db, ctx.Home);

    private static long ParseId(string? text)
    {
        var trimmed = text?.Trim() ?? string.Empty;
        if (!long.TryParse(trimmed, NumberStyles.None, CultureInfo.InvariantCulture, out var id) || id <= 0)
        {
            var shown = trimmed.Length > 40 ? trimmed[..40] + "…" : trimmed;
            throw CliApp.UsageError($"invalid quarantine ID '{shown}': expected a number as 'quarantine list' shows");
        }
        return id;
    }

    private static QuarantineJson ToJson(QuarantineRecord i) => new(i.Id, i.ContentId, i.SafeName, i.StateName, i.Reason, i.AnnouncedName, i.Size, i.Verified,
        i.Publisher?.Text, i.SourcePeers.Select(p => p.Text), i.Path, i.ReleasedPath, i.Created, i.Updated);

    private static string Num(long n) => n.ToString(CultureInfo.InvariantCulture);

    /// <summary>Bytes with thousands separators, as 'share list' and 'search' show them.</summary>
    private static string Size(long n) => n.ToString("N0", CultureInfo.InvariantCulture);
}
