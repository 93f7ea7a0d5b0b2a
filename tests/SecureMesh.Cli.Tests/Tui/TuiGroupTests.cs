using SecureMesh.Cli.Tui;
using Terminal.Gui.Input;
using Terminal.Gui.Views;

namespace SecureMesh.Cli.Tests.Tui;

/// <summary>The Groups view, and the audience in the Shares view and the add-share dialog.</summary>
[Collection(TuiCollection.Name)]
public sealed class TuiGroupTests
{
    [Fact]
    public void Groups_view_creates_a_group_and_adds_and_removes_members_by_name_or_peer_id()
    {
        using var h = new TuiHarness();
        h.Press(Key.F7);
        h.WaitForScreen("family");
        Assert.Contains("alice", h.Screen, StringComparison.Ordinal);

        h.Dialogs.Enqueue(d =>
        {
            d.Fields[0].Text = "work";
            d.Press("OK");
        });
        h.Press(Key.C);
        h.WaitFor(() => h.Client.Called("CreateGroupAsync work"), "CreateGroupAsync");
        h.Refresh(() => h.Tui.Groups.Rows.Any(g => g.Name == "work"), "the new group");

        Select(h, "family");
        h.Dialogs.Enqueue(d =>
        {
            d.Fields[0].Text = "bob";
            d.Press("OK");
        });
        h.Press(Key.A);
        h.WaitFor(() => h.Client.Called($"AddGroupMembersAsync family {FakeNodeClient.BobId}"), "bob added by name");

        Select(h, "family");
        h.Dialogs.Enqueue(d =>
        {
            d.Fields[0].Text = FakeNodeClient.AliceId;
            d.Press("OK");
        });
        h.Press(Key.R);
        h.WaitFor(() => h.Client.Called($"RemoveGroupMembersAsync family {FakeNodeClient.AliceId}"), "alice removed by Peer ID");

        // A name nobody has is a message, and nothing is asked of the node.
        Select(h, "family");
        h.Dialogs.Enqueue(d =>
        {
            d.Fields[0].Text = "nobody-by-that-name";
            d.Press("OK");
        });
        h.Press(Key.A);
        h.WaitForDialog("no peer named 'nobody-by-that-name'");
        Assert.Equal(1, h.Client.Calls.Count(c => c.StartsWith("AddGroupMembersAsync", StringComparison.Ordinal)));

        Select(h, "work");
        h.Dialogs.Enqueue(d => d.Press("Delete"));
        h.Press(Key.X);
        h.WaitFor(() => h.Client.Called("DeleteGroupAsync work"), "DeleteGroupAsync");
    }

    [Fact]
    public void Shares_view_shows_and_sets_the_audience_and_the_add_dialog_asks_for_it()
    {
        using var h = new TuiHarness(width: 120, height: 30);
        h.Press(Key.F2);
        h.WaitForScreen("/home/me/notes.txt");
        Assert.Contains("family", h.Screen, StringComparison.Ordinal);

        var table = (TableView)h.Tui.Shares.SubViews.Single();
        table.SetSelection(0, 0, false);
        h.Pump();
        h.Dialogs.Enqueue(d =>
        {
            Assert.Equal("all", d.Fields[0].Text);
            d.Fields[0].Text = "all,family";
            d.Press("OK");
        });
        h.Press(Key.W);
        h.WaitForDialog("'all' already means every trusted peer");
        Assert.False(h.Client.Called("SetShareAudienceAsync"));

        h.Dialogs.Enqueue(d =>
        {
            d.Fields[0].Text = $"family, {FakeNodeClient.BobId}";
            d.Press("OK");
        });
        h.Press(Key.W);
        h.WaitFor(() => h.Client.Called($"SetShareAudienceAsync /srv/films family,{FakeNodeClient.BobId}"), "SetShareAudienceAsync");

        var dir = Directory.CreateTempSubdirectory("securemesh-share-").FullName;
        try
        {
            h.Dialogs.Enqueue(d =>
            {
                Assert.Equal(2, d.Fields.Count);
                Assert.Equal("all", d.Fields[1].Text);
                d.Fields[0].Text = dir;
                d.Fields[1].Text = "family";
                d.Press("OK");
            });
            h.Press(Key.A);
            h.WaitFor(() => h.Client.Called($"AddShareAsync {dir} family"), "AddShareAsync with the audience");
        }
        finally
        {
            Directory.Delete(dir);
        }
    }

    private static void Select(TuiHarness h, string group)
    {
        h.Press(Key.F7);
        h.Refresh(() => h.Tui.Groups.Rows.Any(g => g.Name == group), $"group {group}");
        var row = h.Tui.Groups.Rows.ToList().FindIndex(g => g.Name == group);
        var table = (TableView)h.Tui.Groups.SubViews.Single();
        table.SetSelection(0, row, false);
        h.Pump();
    }
}
