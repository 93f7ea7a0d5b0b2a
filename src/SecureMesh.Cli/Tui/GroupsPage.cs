using Terminal.Gui.Input;

namespace SecureMesh.Cli.Tui;

/// <summary>Peer groups (the audiences shares are given to): create, add and remove members, delete.</summary>
internal sealed class GroupsPage : TuiPage
{
    private readonly RecordTable<GroupView> _table = new(new()
    {
        ["Group"] = g => g.Name,
        ["Size"] = g => g.Members.Count,
        ["Members"] = g => g.Members.Count == 0 ? "-" : string.Join(", ", g.Members.Select(Member)),
    });

    private IReadOnlyList<PeerView> _peers = [];

    public GroupsPage(TuiApp tui)
        : base(tui, "Groups", "c create  a add member  r remove member  x delete")
    {
        _table.MaxWidth(0, 20);
        Add(_table.View);
    }

    public IReadOnlyList<GroupView> Rows => _table.Rows;

    private static string Member(GroupMemberView m) =>
        (m.Name ?? Fmt.ShortId(m.PeerId)) + (m.State == "trusted" ? string.Empty : $" ({m.State})");

    public override async Task<Action> LoadAsync(INodeClient client, CancellationToken cancellationToken)
    {
        var groups = await client.ListGroupsAsync(cancellationToken).ConfigureAwait(false);
        var peers = await client.ListPeersAsync(cancellationToken).ConfigureAwait(false);
        return () =>
        {
            _peers = peers;
            _table.SetRows(groups);
        };
    }

    public override void FocusDefault() => _table.View.SetFocus();

    public override bool HandleKey(Key key, bool typing)
    {
        if (typing)
        {
            return false;
        }
        if (key == Key.C)
        {
            var values = Tui.Prompt("Create group", "Letters, digits, '.', '_' or '-'. Share a folder with it from the Shares view (w).", ("Name", string.Empty));
            if (values is not null && values[0].Length > 0)
            {
                Tui.RunAction("Create group", ct => Tui.Client.CreateGroupAsync(values[0], ct));
            }
            return true;
        }
        if (key == Key.A)
        {
            WithSelected(g => ChangeMembers(g, add: true));
            return true;
        }
        if (key == Key.R)
        {
            WithSelected(g => ChangeMembers(g, add: false));
            return true;
        }
        if (key == Key.X || key == Key.Delete)
        {
            WithSelected(g =>
            {
                if (Tui.Confirm("Delete group", $"Delete the group {g.Name}?\n(Refused while a share is given to it.)", "_Delete"))
                {
                    Tui.RunAction("Delete group", ct => Tui.Client.DeleteGroupAsync(g.Name, ct));
                }
            });
            return true;
        }
        return false;
    }

    private void WithSelected(Action<GroupView> action)
    {
        if (_table.Selected is { } group)
        {
            action(group);
        }
        else
        {
            Tui.ShowMessage("Groups", "Select a group first (create one with c).");
        }
    }

    private void ChangeMembers(GroupView group, bool add)
    {
        var title = add ? "Add members" : "Remove members";
        var intro = add
            ? $"Peers to add to {group.Name}: names or Peer IDs, separated by commas. Only trusted peers ever see anything."
            : $"Peers to remove from {group.Name}: names or Peer IDs, separated by commas. What they fetch through it stops at once.";
        var values = Tui.Prompt(title, intro, ("Peers", string.Empty));
        if (values is null || values[0].Length == 0)
        {
            return;
        }
        var pool = add ? _peers.Select(p => (p.PeerId, p.Name)) : group.Members.Select(m => (m.PeerId, m.Name));
        if (!PeerNames.TryResolve(values[0], pool, out var ids, out var error))
        {
            Tui.ShowMessage(title, error, error: true);
            return;
        }
        Tui.RunAction(title, ct => add ? Tui.Client.AddGroupMembersAsync(group.Name, ids, ct) : Tui.Client.RemoveGroupMembersAsync(group.Name, ids, ct));
    }
}
