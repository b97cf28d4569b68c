pub mod unicore;
