using System.CommandLine;
using System.Text.Json.Serialization.Metadata;
using SecureMesh.Cli.Json;
using SecureMesh.Core.Identity;
using SecureMesh.Node.Control;

namespace SecureMesh.Cli.Commands;

/// <summary>
/// <c>groups list | create NAME | add NAME PEERID… | remove NAME PEERID… | delete NAME</c>: peer groups, the audiences
/// shares are given to (<c>share add PATH --with GROUP</c>); through the running node when there is one.
/// </summary>
internal static class GroupCommands
{
    private delegate Task<int> Body(ParseResult parse, CliContext ctx, IGroupControl groups, CancellationToken cancellationToken);

    public static void Add(RootCommand root, CliConsole console)
    {
        var groups = new Command("groups", "Groups of peers, to share a folder with some peers only");
        var name = new Argument<string>("NAME") { Description = "The group's name (letters, digits, '.', '_' or '-')" };
        var peers = new Argument<string[]>("PEERID") { Description = "Peer IDs (12D3KooW…) of known peers", Arity = ArgumentArity.OneOrMore };

        var list = new Command("list", "List groups and their members");
        SetAction(list, console, async (parse, ctx, control, ct) =>
        {
            var all = await control.ListGroupsAsync(ct);
            if (ctx.Json)
            {
                ctx.WriteJson(all, CliJsonContext.Output.Groups);
                return CliApp.Success;
            }
            if (all.Count == 0)
            {
                ctx.Out.WriteLine("no groups yet; create one with 'securemesh groups create NAME'");
                return CliApp.Success;
            }
            Table.Write(ctx.Out, ["GROUP", "MEMBERS"], all.Select(g => new[]
            {
                g.Name,
                g.Members.Count == 0 ? "-" : string.Join(", ", g.Members.Select(m => $"{m.Name ?? m.PeerId} ({m.State})")),
            }));
            return CliApp.Success;
        });
        groups.Subcommands.Add(list);

        var create = new Command("create", "Create an empty group") { name };
        SetAction(create, console, async (parse, ctx, control, ct) =>
        {
            var group = await control.CreateGroupAsync(Arg(parse, name), ct);
            return Done(ctx, group, CliJsonContext.Output.GroupInfo, $"created group {group.Name}");
        });
        groups.Subcommands.Add(create);

        var add = new Command("add", "Add known peers to a group (only trusted ones ever see anything)") { name, peers };
        SetAction(add, console, async (parse, ctx, control, ct) =>
        {
            var ids = ParsePeers(parse, peers);
            var result = await control.AddGroupMembersAsync(Arg(parse, name), ids, ct);
            return Done(ctx, result, CliJsonContext.Output.GroupMembersResult, $"added {result.Changed} peer(s) to {result.Group}");
        });
        groups.Subcommands.Add(add);

        var remove = new Command("remove", "Remove peers from a group; what they were fetching through it stops at once") { name, peers };
        SetAction(remove, console, async (parse, ctx, control, ct) =>
        {
            var ids = ParsePeers(parse, peers);
            var result = await control.RemoveGroupMembersAsync(Arg(parse, name), ids, ct);
            return Done(ctx, result, CliJsonContext.Output.GroupMembersResult, $"removed {result.Changed} peer(s) from {result.Group}");
        });
        groups.Subcommands.Add(remove);

        var delete = new Command("delete", "Delete a group (refused while a share is given to it)") { name };
        SetAction(delete, console, async (parse, ctx, control, ct) =>
        {
            var group = Arg(parse, name);
            await control.DeleteGroupAsync(group, ct);
            return Done(ctx, new GroupDeletedJson(group, Deleted: true), CliJsonContext.Output.GroupDeletedJson, $"deleted group {group}");
        });
        groups.Subcommands.Add(delete);
        root.Subcommands.Add(groups);
    }

    private static string Arg(ParseResult parse, Argument<string> argument) => parse.GetValue(argument)!.Trim();

    private static List<string> ParsePeers(ParseResult parse, Argument<string[]> argument) =>
        // Checked before the node is asked, so a typo is the same clear error with or without one.
        [.. (parse.GetValue(argument) ?? []).Select(p => PeerId.Parse(p.Trim()).Text)];

    internal static int Done<T>(CliContext ctx, T json, JsonTypeInfo<T> typeInfo, string text)
    {
        if (ctx.Json)
        {
            ctx.WriteJson(json, typeInfo);
        }
        else
        {
            ctx.Out.WriteLine(text);
        }
        return CliApp.Success;
    }

    private static void SetAction(Command command, CliConsole console, Body body) =>
        command.SetAction((parse, cancellationToken) => CliApp.ExecuteAsync(parse, console, async (ctx, ct) =>
        {
            using var access = NodeAccess.Open(ctx);
            return await body(parse, ctx, access.Groups, ct);
        }, cancellationToken));
}
