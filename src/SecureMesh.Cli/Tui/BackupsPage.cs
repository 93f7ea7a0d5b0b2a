using System.Globalization;
using SecureMesh.Node.Backup;
using Terminal.Gui.Input;
using Terminal.Gui.ViewBase;
using Terminal.Gui.Views;

namespace SecureMesh.Cli.Tui;

/// <summary>One holder of a backed-up path, as a row of the Backups view (the path is written on its first holder's row only).</summary>
internal sealed record BackupRow(BackupShareStatus Share, BackupHolderStatus Holder, string? HolderName, bool First);

/// <summary>
/// Backups to trusted peers (what <c>backup status</c> shows: per path its holders, their state, bytes stored, last good
/// proof, versions, under-replication) and the space this node offers to others; add, check now, remove.
/// </summary>
internal sealed class BackupsPage : TuiPage
{
    private const int PathWidth = 18;

    private readonly RecordTable<BackupRow> _table = new(new()
    {
        // The end of a path tells backed-up folders apart better than its start.
        ["Path"] = r => !r.First ? string.Empty : r.Share.Path.Length <= PathWidth ? r.Share.Path : "…" + r.Share.Path[^(PathWidth - 1)..],
        ["Holder"] = r => r.HolderName ?? Fmt.ShortId(r.Holder.PeerId),
        ["State"] = r => r.Holder.State,
        ["Stored"] = r => Fmt.Size(r.Holder.Bytes),
        ["Proof"] = r => r.Holder.LastProof is { } t ? t.ToLocalTime().ToString("MM-dd HH:mm", CultureInfo.InvariantCulture) : "never",
        ["Vers"] = r => r.Share.Versions,
        ["Copies"] = r => $"{r.Share.Holders.Count(h => h.State == "complete")}/{r.Share.Copies}{(r.Share.UnderReplicated ? " UNDER" : string.Empty)}",
    });

    private readonly RecordTable<BackupOfferView> _offers = new(new()
    {
        ["Offered to"] = o => o.Name ?? Fmt.ShortId(o.PeerId),
        ["Quota"] = o => Fmt.Size(o.Quota),
        ["Used"] = o => Fmt.Size(o.Used),
    });

    private IReadOnlyDictionary<string, string> _names = new Dictionary<string, string>();

    public BackupsPage(TuiApp tui)
        : base(tui, "Backups", "a add  c check now  x remove  i details")
    {
        TabTitle = "Bkup";
        _table.MaxWidth(0, PathWidth);
        _table.MaxWidth(1, 14);
        _table.View.Height = Dim.Fill(7);
        _offers.View.Y = Pos.AnchorEnd(7);
        _offers.View.Height = 7;
        Add(_table.View, _offers.View);
    }

    public IReadOnlyList<BackupRow> Rows => _table.Rows;

    public IReadOnlyList<BackupOfferView> Offers => _offers.Rows;

    public override async Task<Action> LoadAsync(INodeClient client, CancellationToken cancellationToken)
    {
        var backups = await client.GetBackupsAsync(cancellationToken).ConfigureAwait(false);
        var rows = backups.Paths.SelectMany(s => s.Holders.Select((h, i) => new BackupRow(s, h, backups.PeerNames.GetValueOrDefault(h.PeerId), i == 0))).ToList();
        return () =>
        {
            _names = backups.PeerNames;
            _table.SetRows(rows);
            _offers.SetRows(backups.Offers);
        };
    }

    public override void FocusDefault() => _table.View.SetFocus();

    public override bool HandleKey(Key key, bool typing)
    {
        if (typing)
        {
            return false;
        }
        if (key == Key.A)
        {
            AddBackup();
            return true;
        }
        if (key == Key.C)
        {
            var running = Tui.Status?.Running != false;
            Tui.RunAction("Check backups", ct => Tui.Client.CheckBackupsAsync(ct), () => Tui.ShowMessage("Check backups", running
                ? "Proof round asked for: the node challenges every holder now. The outcome shows here (Proof, State)."
                : "Proof round asked for; the node is not running, so it happens when the node starts."));
            return true;
        }
        if (key == Key.X || key == Key.Delete)
        {
            WithSelected(r =>
            {
                if (Tui.Confirm("Remove backup", $"Stop backing up {r.Share.Path}?\nIts copies are deleted from every holder at the next round; your files stay on disk.", "_Remove"))
                {
                    Tui.RunAction("Remove backup", ct => Tui.Client.RemoveBackupAsync(r.Share.Path, ct));
                }
            });
            return true;
        }
        if (key == Key.I)
        {
            WithSelected(r => Tui.ShowMessage(r.Share.Path, Details(r)));
            return true;
        }
        return false;
    }

    private static string Details(BackupRow r)
    {
        var s = r.Share;
        var h = r.Holder;
        var proof = h.LastProof is { } t ? Fmt.Time(t) : "never";
        return $"{s.Files} file(s), {Fmt.Size(s.Bytes)}, {s.Versions} version(s), keep {s.Keep}, {s.Copies} cop{(s.Copies == 1 ? "y" : "ies")} wanted{(s.UnderReplicated ? " (UNDER-REPLICATED)" : string.Empty)}\n"
            + $"Holder {h.PeerId}\n{h.State}, {Fmt.Size(h.Bytes)} stored, {h.Missing} blob(s) missing, last good proof {proof}"
            + (h.Reason is null ? string.Empty : $"\nReason: {h.Reason}");
    }

    private void WithSelected(Action<BackupRow> action)
    {
        if (_table.Selected is { } row)
        {
            action(row);
        }
        else
        {
            Tui.ShowMessage("Backups", "Select a backed-up path first (add one with a).");
        }
    }

    private void AddBackup()
    {
        const string title = "Add backup";
        var pool = _names.Select(n => (n.Key, (string?)n.Value)).ToList();
        var values = Tui.PromptValid(title,
            "A file or folder to back up, encrypted, to trusted peers that offer you space.\nHolders: names or Peer IDs, separated by commas. Copies: how many must have everything (empty: all). Keep: staggered, forever or a number of versions.",
            v =>
            {
                var path = SharesPage.ExpandHome(v[0]);
                if (v[0].Length != 0 && !File.Exists(path) && !Directory.Exists(path))
                {
                    return $"no such file or folder: {path}";
                }
                if (v[0].Length != 0 && v[1].Length == 0)
                {
                    return "give at least one holder";
                }
                if (!PeerNames.TryResolve(v[1], pool, out _, out var error))
                {
                    return error;
                }
                return v[2].Length == 0 || int.TryParse(v[2], NumberStyles.None, CultureInfo.InvariantCulture, out _) ? null : $"copies must be a whole number, not '{v[2]}'";
            },
            ("Path", string.Empty), ("Holders", string.Empty), ("Copies", string.Empty), ("Keep", "staggered"));
        if (values is null || values[0].Length == 0)
        {
            return;
        }
        PeerNames.TryResolve(values[1], pool, out var holders, out _);
        int? copies = values[2].Length == 0 ? null : int.Parse(values[2], NumberStyles.None, CultureInfo.InvariantCulture);
        var keep = values[3].Length == 0 ? null : values[3];
        var full = Path.GetFullPath(SharesPage.ExpandHome(values[0]));
        Tui.RunAction(title, ct => Tui.Client.AddBackupAsync(full, holders, copies, keep, ct),
            () => Tui.ShowMessage(title, $"Backing up {full}: the node uploads it in the background; the holders show as complete when done."));
    }
}
