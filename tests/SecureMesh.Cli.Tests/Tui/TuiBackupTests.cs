using System.Security.Cryptography;
using SecureMesh.Cli.Tui;
using SecureMesh.Core.Identity;
using Terminal.Gui.Input;

namespace SecureMesh.Cli.Tests.Tui;

/// <summary>The Backups view on real stores: the owner's running node and a real holder node on 127.0.0.1.</summary>
[Collection(TuiCollection.Name)]
public sealed class TuiBackupTests : BackupTestBase
{
    [Fact]
    public async Task Backups_view_adds_a_path_lists_its_holders_states_and_offers_checks_now_and_removes_after_asking()
    {
        var holder = await StartHolderAsync();
        var bob = holder.PeerId;
        // A second holder that is nowhere to be reached: it cannot become complete, so the path is under-replicated.
        using var carol = NodeIdentity.Generate();
        Assert.Equal(0, Cli.Home_("peers", "add", carol.PeerId.Text, "--addr", "127.0.0.1:1", "--trust", "--name", "carol").ExitCode);
        Assert.Equal(0, Cli.Home_("backup", "offer", bob, "--quota", "1g").ExitCode);
        var folder = Path.Combine(Cli.Root, "documents with a rather long folder name");
        Directory.CreateDirectory(folder);
        await File.WriteAllBytesAsync(Path.Combine(folder, "thesis.pdf"), RandomNumberGenerator.GetBytes(200_000));

        // The owner's node runs (as the TUI's own node or `securemesh run` would) and watches the database.
        var db = await StartOwnerNodeAsync();

        using var h = new TuiHarness(new FakeNodeClient { Backups = new HomeBackups(Cli.Home) }, callTimeout: TimeSpan.FromSeconds(30));
        h.Press(Key.F8);
        Assert.Same(h.Tui.Backups, h.Tui.CurrentPage);
        RefreshUntil(h, () => h.Tui.Backups.Offers.Count == 1, "the offer to bob");
        Assert.Contains("bob", h.Screen, StringComparison.Ordinal);
        Assert.Contains("1.0 GiB", h.Screen, StringComparison.Ordinal);

        // Add: the dialog takes holders by name; copies left empty means all of them.
        h.Dialogs.Enqueue(d =>
        {
            d.Fields[0].Text = folder;
            d.Fields[1].Text = "bob, carol";
            d.Press("OK");
        });
        h.Press(Key.A);
        h.WaitForDialog("Backing up");
        Assert.True(h.Client.Called($"AddBackupAsync {folder} {bob},{carol.PeerId.Text}"), string.Join(", ", h.Client.Calls));
        var set = Assert.Single(db.Backup.ListSets());
        Assert.Equal(2, set.Copies);

        RefreshUntil(h, () => h.Tui.Backups.Rows.Any(r => r.HolderName == "bob" && r.Holder.State == "complete")
            && h.Tui.Backups.Rows.Any(r => r.HolderName == "carol" && r.Holder.State == "failing"), "bob complete, carol failing");
        var rows = h.Tui.Backups.Rows;
        Assert.Equal(2, rows.Count);
        Assert.All(rows, r => Assert.Equal(folder, r.Share.Path));
        Assert.True(rows[0].Share.UnderReplicated);
        var screen = h.Screen;
        foreach (var text in new[] { "complete", "failing", "1/2 UNDER", "… long folder name", "never", "Offered to", "Quota", "Used" })
        {
            Assert.Contains(text, screen, StringComparison.Ordinal);
        }
        AssertFitsIn80Columns(h);

        // Check now: the running node challenges bob (a real proof round), and the view shows when.
        h.Press(Key.C);
        h.WaitForDialog("Proof round asked for");
        Assert.True(h.Client.Called("CheckBackupsAsync"));
        RefreshUntil(h, () => h.Tui.Backups.Rows.Any(r => r.HolderName == "bob" && r.Holder.LastProof is not null), "bob's proof");
        Assert.NotNull(db.Backup.GetHolder(holder.Identity.PeerId).LastProof);

        // Remove asks first; Cancel keeps the path.
        h.Dialogs.Enqueue(d => d.Press("Cancel"));
        h.Press(Key.X);
        h.WaitForDialog("Stop backing up");
        Assert.False(h.Client.Called($"RemoveBackupAsync {folder}"));
        Assert.Single(db.Backup.ListSets());
        h.Dialogs.Enqueue(d => d.Press("Remove"));
        h.Press(Key.X);
        h.WaitFor(() => h.Client.Called($"RemoveBackupAsync {folder}"), "RemoveBackupAsync");
        RefreshUntil(h, () => h.Tui.Backups.Rows.Count == 0, "the path gone from the view");
        Assert.Empty(db.Backup.ListSets());
        Assert.True(File.Exists(Path.Combine(folder, "thesis.pdf")), "the files stay on disk");
    }

    [Fact]
    public void F8_alt_8_and_8_reach_the_Backups_view_and_every_tab_fits_in_80_columns_whichever_is_active()
    {
        using var h = new TuiHarness();
        foreach (var key in new[] { Key.F8, Key.D8.WithAlt, Key.D8 })
        {
            h.Press(Key.F1);
            Assert.Same(h.Tui.Peers, h.Tui.CurrentPage);
            h.Press(key);
            Assert.Same(h.Tui.Backups, h.Tui.CurrentPage);
            h.WaitForScreen("[F8 Backups]");
            Assert.Contains(h.Tui.Backups.HelpText, h.Screen, StringComparison.Ordinal);
        }
        // The view's keys with nothing backed up: a clear message, nothing asked of the node.
        h.Press(Key.X);
        h.WaitForDialog("Select a backed-up path first");
        Assert.DoesNotContain(h.Client.Calls, c => c.StartsWith("RemoveBackupAsync", StringComparison.Ordinal));
        foreach (var key in new[] { Key.F1, Key.F2, Key.F3, Key.F4, Key.F5, Key.F6, Key.F7, Key.F8 })
        {
            h.Press(key);
            AssertFitsIn80Columns(h);
        }
    }

    /// <summary>Every tab is whole on the tab row (the active one with its full title), and the Backups view's columns all show.</summary>
    private static void AssertFitsIn80Columns(TuiHarness h)
    {
        var lines = h.Screen.Split('\n');
        var tabRow = lines[2].TrimEnd();
        Assert.True(tabRow.Length <= 80, tabRow);
        for (var i = 1; i <= 8; i++)
        {
            Assert.Contains($"F{i} ", tabRow, StringComparison.Ordinal);
        }
        var active = Array.IndexOf(Pages(h), h.Tui.CurrentPage);
        Assert.Contains($"[F{active + 1} {h.Tui.CurrentPage.Title}]", tabRow, StringComparison.Ordinal);
        Assert.EndsWith(active == 7 ? "[F8 Backups]" : "F8 Bkup", tabRow, StringComparison.Ordinal);
        if (ReferenceEquals(h.Tui.CurrentPage, h.Tui.Backups))
        {
            foreach (var header in new[] { "Path", "Holder", "State", "Stored", "Proof", "Vers", "Copies", "Offered to", "Quota", "Used" })
            {
                Assert.Contains(header, h.Screen, StringComparison.Ordinal);
            }
        }
    }

    private static TuiPage[] Pages(TuiHarness h) =>
        [h.Tui.Peers, h.Tui.Shares, h.Tui.Search, h.Tui.Transfers, h.Tui.Quarantine, h.Tui.Log, h.Tui.Groups, h.Tui.Backups];

    /// <summary>Refreshes the view until <paramref name="condition"/> holds: the node uploads and proves in the background, which takes longer than one refresh.</summary>
    private static void RefreshUntil(TuiHarness h, Func<bool> condition, string what)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(90);
        while (true)
        {
            h.Refresh(() => true, what);
            for (var i = 0; i < 40; i++)
            {
                h.Pump();
                if (condition())
                {
                    return;
                }
                Thread.Sleep(25);
            }
            if (DateTime.UtcNow > deadline)
            {
                throw new TimeoutException($"waited 90 s for {what}; the screen:\n{h.Screen}\ncalls: {string.Join(", ", h.Client.Calls)}");
            }
        }
    }
}
