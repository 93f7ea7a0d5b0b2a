using Terminal.Gui.Input;

namespace SecureMesh.Cli.Tui;

/// <summary>Shared paths with who may see them and their indexing progress; add, set the audience, remove.</summary>
internal sealed class SharesPage : TuiPage
{
    private readonly RecordTable<ShareView> _table = new(new()
    {
        ["Path"] = s => s.Path,
        ["With"] = s => s.Audience,
        ["Files"] = s => s.Files,
        ["Size"] = s => Fmt.Size(s.TotalBytes),
        ["Indexed"] = s => s.Indexing ? Fmt.Bar(s.Progress) : "done",
    });

    public SharesPage(TuiApp tui)
        : base(tui, "Shares", "a add  w shared with  x remove")
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
        if (key == Key.W)
        {
            if (_table.Selected is not { } selected)
            {
                Tui.ShowMessage("Shares", "Select a share first.");
            }
            else
            {
                SetAudience(selected);
            }
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
        var values = Tui.PromptValid("Add share", "A file or folder on this machine to offer to trusted peers.\n" + AudienceHelp,
            v =>
            {
                var path = ExpandHome(v[0]);
                if (v[0].Length != 0 && !File.Exists(path) && !Directory.Exists(path))
                {
                    return $"no such file or folder: {path}";
                }
                return AudienceError(v[1]);
            },
            ("Path", string.Empty), ("Shared with", "all"));
        if (values is null || values[0].Length == 0)
        {
            return;
        }
        if (!TryAudience(values[1], "Add share", out var audience))
        {
            return;
        }
        var full = Path.GetFullPath(ExpandHome(values[0]));
        Tui.RunAction("Add share", ct => Tui.Client.AddShareAsync(full, audience, ct));
    }

    internal const string AudienceHelp = "Shared with: all (every trusted peer), a group, or Peer IDs, separated by commas.";

    private void SetAudience(ShareView share)
    {
        var values = Tui.Prompt("Shared with", $"Who may see {share.Path}?\n{AudienceHelp}\nPeers that lose sight of it stop getting it at once.", ("Shared with", share.Audience));
        if (values is not null && TryAudience(values[0], "Shared with", out var audience))
        {
            Tui.RunAction("Shared with", ct => Tui.Client.SetShareAudienceAsync(share.Path, audience, ct));
        }
    }

    private static string? AudienceError(string text)
    {
        try
        {
            Storage.ShareAudience.Parse(text);
            return null;
        }
        catch (Core.SecureMeshException e)
        {
            return e.Message;
        }
    }

    private bool TryAudience(string text, string title, out string audience)
    {
        try
        {
            audience = Storage.ShareAudience.Parse(text).ToString();
            return true;
        }
        catch (Core.SecureMeshException e)
        {
            Tui.ShowMessage(title, e.Message, error: true);
            audience = string.Empty;
            return false;
        }
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
