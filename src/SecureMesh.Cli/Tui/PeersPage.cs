using SecureMesh.Core;
using SecureMesh.Core.Identity;
using SecureMesh.Node.Control;
using Terminal.Gui.Input;

namespace SecureMesh.Cli.Tui;

/// <summary>Known peers, with add, trust (after showing the fingerprint and SAS), block, unblock, rename and remove.</summary>
internal sealed class PeersPage : TuiPage
{
    private readonly RecordTable<PeerView> _table = new(new()
    {
        ["Name"] = p => p.Name ?? "-",
        ["Peer ID"] = p => Fmt.ShortId(p.PeerId),
        ["State"] = p => p.RefusingUs ? Fmt.State(p.State) + ", refusing us" : Fmt.State(p.State),
        ["On"] = p => p.Online ? p.Path ?? "yes" : "no",
        ["Fingerprint"] = p => p.Fingerprint,
        ["SAS"] = p => p.Sas ?? "-",
    });

    public PeersPage(TuiApp tui)
        : base(tui, "Peers", "a add  t trust  b block  u unblock  n rename  x remove")
    {
        _table.MaxWidth(0, 12);
        Add(_table.View);
    }

    public IReadOnlyList<PeerView> Rows => _table.Rows;

    public PeerView? Selected => _table.Selected;

    public override async Task<Action> LoadAsync(INodeClient client, CancellationToken cancellationToken)
    {
        var peers = await client.ListPeersAsync(cancellationToken).ConfigureAwait(false);
        var ordered = peers.OrderBy(p => p.State).ThenBy(p => p.Name ?? p.PeerId, StringComparer.OrdinalIgnoreCase).ToList();
        return () => _table.SetRows(ordered);
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
            AddPeer();
            return true;
        }
        if (key == Key.T)
        {
            WithSelected(Trust);
            return true;
        }
        if (key == Key.B)
        {
            WithSelected(Block);
            return true;
        }
        if (key == Key.U)
        {
            WithSelected(p => Tui.RunAction("Unblock", ct => Tui.Client.UnblockAsync(p.PeerId, ct)));
            return true;
        }
        if (key == Key.N)
        {
            WithSelected(Rename);
            return true;
        }
        if (key == Key.X || key == Key.Delete)
        {
            WithSelected(Remove);
            return true;
        }
        return false;
    }

    private void WithSelected(Action<PeerView> action)
    {
        if (Selected is { } peer)
        {
            action(peer);
        }
        else
        {
            Tui.ShowMessage("Peers", "Select a peer first.");
        }
    }

    private void AddPeer()
    {
        // A typo is reported and the dialog comes back with what was typed.
        var values = Tui.PromptValid("Add peer",
            "A Peer ID starts with 12D3KooW. Address (HOST:PORT), name and the fingerprint the peer told you are optional.",
            CheckNewPeer,
            ("Peer ID", string.Empty), ("Address", string.Empty), ("Name", string.Empty), ("Fingerprint", string.Empty));
        if (values is null)
        {
            return;
        }
        var id = PeerId.Parse(values[0]);
        var address = values[1].Length == 0 ? null : values[1];
        var name = values[2].Length == 0 ? null : values[2];
        var compared = values[3].Length == 0 ? string.Empty : "\n(it matches the fingerprint you typed)";
        var answer = Terminal.Gui.Views.MessageBox.Query(Tui.App, "Add peer",
            $"Peer ID {id.Text}\nFingerprint {id.Fingerprint}{compared}\n\nTrust it only if this fingerprint matches the one the peer reads out to you.",
            "_Trust", "Add as _pending", "_Cancel");
        if (answer is not (0 or 1))
        {
            return;
        }
        // A relayed address through a peer not trusted here is kept but not dialled: say so once it is added.
        var note = address is null ? null : Commands.TrustCommands.UntrustedRelayNote(NodeControl.NormalizeAddress(address, id), id,
            relay => Rows.Any(p => p.PeerId == relay && p.State == PeerViewState.Trusted));
        Tui.RunAction("Add peer", ct => Tui.Client.AddPeerAsync(id.Text, address, name, trust: answer == 0, ct),
            note is null ? null : () => Tui.ShowMessage("Add peer", "Added. Note: " + note));
    }

    /// <summary>Null when the add dialog's values can be used, else what is wrong with them.</summary>
    internal static string? CheckNewPeer(string[] values)
    {
        if (!PeerId.TryParse(values[0], out var id, out var error))
        {
            return error;
        }
        try
        {
            if (values[1].Length > 0)
            {
                NodeControl.NormalizeAddress(values[1], id);
            }
            NodeControl.ValidateName(values[2]);
            if (values[3].Length > 0)
            {
                Commands.TrustCommands.CheckFingerprint(id, values[3]);
            }
        }
        catch (SecureMeshException e)
        {
            return e.Message;
        }
        return null;
    }

    /// <summary>The confirmation text: everything the user must compare before trusting.</summary>
    internal static string TrustQuestion(PeerView peer) =>
        $"Trust {peer.Name ?? "this peer"}?\n\nPeer ID {peer.PeerId}\nFingerprint {peer.Fingerprint}\n"
        + (peer.Sas is null ? "SAS: no handshake yet (connect first to compare it)" : $"SAS {peer.Sas}")
        + "\n\nCompare them with the peer by voice before you trust.";

    private void Trust(PeerView peer)
    {
        if (Tui.Confirm("Trust peer", TrustQuestion(peer), "_Trust"))
        {
            Tui.RunAction("Trust", ct => Tui.Client.TrustAsync(peer.PeerId, ct));
        }
    }

    private void Block(PeerView peer)
    {
        var values = Tui.Prompt("Block peer", $"Block {peer.Name ?? Fmt.ShortId(peer.PeerId)}: it is disconnected and refused from now on.", ("Reason", string.Empty));
        if (values is not null)
        {
            var reason = values[0].Length == 0 ? null : values[0];
            Tui.RunAction("Block", ct => Tui.Client.BlockAsync(peer.PeerId, reason, ct));
        }
    }

    private void Rename(PeerView peer)
    {
        var values = Tui.PromptValid("Rename peer", null, v => v[0].Length == 0 ? "The name cannot be empty." : null, ("Name", peer.Name ?? string.Empty));
        if (values is null)
        {
            return;
        }
        Tui.RunAction("Rename", ct => Tui.Client.RenameAsync(peer.PeerId, values[0], ct));
    }

    private void Remove(PeerView peer)
    {
        if (Tui.Confirm("Remove peer", $"Forget {peer.Name ?? "this peer"}?\n{peer.PeerId}", "_Remove"))
        {
            Tui.RunAction("Remove", ct => Tui.Client.RemoveAsync(peer.PeerId, ct));
        }
    }
}
