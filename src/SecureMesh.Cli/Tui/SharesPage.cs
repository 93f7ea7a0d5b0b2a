using Terminal.Gui.Input;

namespace SecureMesh.Cli.Tui;

/// <summary>Shared paths with their indexing progress; add and remove.</summary>
internal sealed class SharesPage : TuiPage
{
    private readonly RecordTable<ShareView> _table = new(new()
    {
        ["Path"] = s => s.Path,
        ["Files"] = s => s.Files,
        ["Size"] = s => Fmt.Size(s.TotalBytes),
        ["Indexed"] = s => s.Indexing ? Fmt.Bar(s.Progress) : "done",
    });

    public SharesPage(TuiApp tui)
        : base(tui, "Shares", "a add  x remove")
    {
        _table.MaxWidth(0, 40);
        Add(_table.View);
    }

    public IReadOnlyList<ShareView> Rows => _table.Rows;

    public override async Task<Action> LoadAsync(INodeClient client, CancellationToken cancellationToken)
    {
        var shares = await client.ListSharesAsync(cancellationToken).ConfigureAwait(false);
        return () => _table.SetRows(shares);
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
            AddShare();
            return true;
        }
        if (key == Key.X || key == Key.Delete)
        {
            if (_table.Selected is not { } share)
            {
                Tui.ShowMessage("Shares", "Select a share first.");
            }
            else if (Tui.Confirm("Remove share", $"Stop sharing {share.Path}?\nThe files stay on disk.", "_Remove"))
            {
                Tui.RunAction("Remove share", ct => Tui.Client.RemoveShareAsync(share.Path, ct));
            }
            return true;
        }
        return false;
    }

    private void AddShare()
    {
        var values = Tui.PromptValid("Add share", "A file or folder on this machine to offer to trusted peers.",
            v =>
            {
                var path = ExpandHome(v[0]);
                return v[0].Length == 0 || File.Exists(path) || Directory.Exists(path) ? null : $"no such file or folder: {path}";
            },
            ("Path", string.Empty));
        if (values is null || values[0].Length == 0)
        {
            return;
        }
        var full = Path.GetFullPath(ExpandHome(values[0]));
        Tui.RunAction("Add share", ct => Tui.Client.AddShareAsync(full, ct));
    }

    internal static string ExpandHome(string path)
    {
        if (path == "~" || path.StartsWith("~/", StringComparison.Ordinal))
        {
            return Environment.GetFolderPath(Environment.SpecialFolder.UserProfile) + path[1..];
        }
        return path;
    }
}
